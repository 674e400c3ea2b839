"""`dlexp-train resume=<sweep folder>` (dlexp.search.sweep_resume): a grid stopped by Ctrl-C, or
killed with kill -9 of its process group, during job 1 finishes with every job completed, and
job 1's final metrics equal an uninterrupted run's. Read back from each job's metrics.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dlexp.errors import ConfigError
from dlexp.search.sweep_resume import resumed_sweep_args
from tests.runs import DLEXP_TRAIN, process_runs

STEPS = ["max_steps=1600", "eval_freq=200", "log_freq=100", "progress=false"]


def common(tiny_cifar: Path) -> list[str]:
    return [f"data.root={tiny_cifar}", "data.validation_size=50", "batch_size=20", *STEPS]


def job_record(sweep: Path, number: int) -> dict | None:
    found = [p for p in sweep.glob(f"{number}_*/metrics.json")]
    return json.loads(found[0].read_text()) if found else None


def stop_during_job_1(tiny_cifar: Path, sweep: Path, signum: int) -> subprocess.CompletedProcess:
    command = [*DLEXP_TRAIN, "-m", "seed=1,2,3,4", *common(tiny_cifar), f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(command, cwd=sweep.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    deadline = time.time() + 120
    while not list(sweep.glob("1_*/checkpoints/last.safetensors")) and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    os.killpg(proc.pid, signum)  # the whole process group, as Ctrl-C in a terminal does
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@pytest.mark.slow  # ~60 s: a sweep stopped twice, resumed twice, and a single run
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_a_stopped_or_killed_grid_resumes_and_job_1_ends_as_if_never_stopped(
    tiny_cifar, tmp_path, signum
):
    sweep = tmp_path / "sweep"
    stopped = stop_during_job_1(tiny_cifar, sweep, signum)
    assert job_record(sweep, 0)["status"] == "completed"
    assert job_record(sweep, 2) is None  # never started
    if signum == signal.SIGINT:
        line = f"dlexp-train: the sweep stopped; finish it with: dlexp-train resume={sweep}"
        assert line in stopped.stderr, stopped.stderr[-2000:]
        assert job_record(sweep, 1)["status"] == "interrupted"
    pids = [json.loads(p.read_text())["pid"] for p in sweep.glob("*/environment.json")]
    time.sleep(1)
    assert not any(process_runs(pid) for pid in pids), "a trainer outlived the sweep"
    first_job = job_record(sweep, 0)

    resumed = subprocess.run([*DLEXP_TRAIN, f"resume={sweep}"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [job_record(sweep, n)["status"] for n in range(4)] == ["completed"] * 4
    assert job_record(sweep, 0) == first_job  # a finished job is kept as it was
    assert len(list(sweep.glob("*/metrics.json"))) == 4  # no job ran twice under a new number

    single = tmp_path / "single"
    subprocess.run([*DLEXP_TRAIN, "seed=2", *common(tiny_cifar), f"hydra.run.dir={single}"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=300)  # fmt: skip
    whole = json.loads((single / "metrics.json").read_text())
    assert job_record(sweep, 1)["final"] == whole["final"]  # bit-exact across the stop


def test_a_resume_rebuilds_the_sweeps_own_command_and_refuses_other_overrides(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task: ['seed=1,2', max_steps=5]\n"
        "    hydra: [hydra.mode=MULTIRUN, hydra/sweeper=dlexp_grid, hydra.sweep.dir=old]\n"
    )
    assert resumed_sweep_args([f"resume={sweep}"]) == [
        "-m", "seed=1,2", "max_steps=5", "hydra/sweeper=dlexp_grid",
        f"hydra.sweep.dir={sweep.absolute()}",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="finishes that sweep as it was started; drop seed=3"):
        resumed_sweep_args([f"resume={sweep}", "seed=3"])
    assert resumed_sweep_args(["resume=outputs/some/run"]) == ["resume=outputs/some/run"]


def test_a_resumed_search_requeues_a_trial_whose_process_died_and_one_its_sweep_stopped(
    tmp_path,
):
    import socket

    import optuna
    from optuna.trial import TrialState

    from dlexp.search.study_parts import open_storage
    from dlexp.search.sweep_resume import STOPPED, counted_trials, requeue_stopped_trials

    storage = open_storage(str(tmp_path / "s.journal"))
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    sweep = tmp_path / "sweep"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    alive = subprocess.Popen(["sleep", "60"])  # another sweep's trial, still running
    for number, (name, pid) in enumerate([("killed", dead.pid), ("alive", alive.pid)]):
        trial = study.ask()
        trial.suggest_float("optim.lr", 1e-3, 1e-1, log=True)
        trial.set_user_attr("sweep_dir", str(sweep))
        trial.set_user_attr("job", number)
        folder = sweep / f"{number}_{name}"
        (folder / ".hydra").mkdir(parents=True)
        environment = {"host": socket.gethostname(), "pid": pid}
        (folder / "environment.json").write_text(json.dumps(environment))
    stopped = study.ask()
    stopped.suggest_float("optim.lr", 1e-3, 1e-1, log=True)
    stopped.set_user_attr("reason", STOPPED)
    study.tell(stopped, state=TrialState.FAIL)
    done = study.ask()
    done.suggest_float("optim.lr", 1e-3, 1e-1, log=True)
    study.tell(done, 0.5)

    try:
        assert requeue_stopped_trials(study, storage) == [0, 2]  # not the live one, nor done
    finally:
        alive.kill()
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL
    assert trials[0].user_attrs["reason"] == "its process died with its sweep"
    assert trials[1].state == TrialState.RUNNING  # its process still runs: another sweep's
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert [t.user_attrs["retry_of"] for t in waiting] == [0, 2]
    for number in (0, 2):  # the next ask takes a requeued trial, with the dead one's parameters
        retry = study.ask()
        assert retry.user_attrs["retry_of"] == number
        lr = retry.suggest_float("optim.lr", 1e-3, 1e-1, log=True)
        assert lr == trials[number].params["optim.lr"]
        where = (retry.user_attrs.get("sweep_dir"), retry.user_attrs.get("job"))
        assert where == (
            trials[number].user_attrs.get("sweep_dir"),
            number if number == 0 else None,
        )
        study.tell(retry, 0.4)  # (its folder: the dead trial's, where it resumes)
    assert counted_trials(study) == 4  # the requeued two count through their retries
    assert requeue_stopped_trials(study, storage) == []  # once only
