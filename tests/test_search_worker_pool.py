"""dlexp's worker pool (dlexp.search.worker_pool): no batch barrier, each slot's share of the
cores and its GPU, a killed job retried from its checkpoint, and no trainer outliving the sweep.
Each check reads back what the jobs themselves left: pool.json, metrics.json, environment.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dlexp.run.folder import job_number
from dlexp.search.worker_pool import SlotTimes, WorkerPool
from tests.runs import DLEXP_TRAIN, process_runs

REPO = Path(__file__).resolve().parent.parent


def grid(tiny_cifar: Path, sweep: Path, *args: str, wait: bool = True):
    command = [
        *DLEXP_TRAIN, "-m", f"data.root={tiny_cifar}", "data.validation_size=50", "batch_size=20",
        "progress=false", f"hydra.sweep.dir={sweep}", *args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # tests.pool_models, for model=custom
    if not wait:
        return subprocess.Popen(command, cwd=sweep.parent, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
    return subprocess.run(command, cwd=sweep.parent, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def jobs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if (p / ".hydra").is_dir()), key=job_number)


def record(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


def test_each_slot_gets_its_share_of_the_cores_and_its_gpu():
    pool = WorkerPool(None, None, None, n_jobs=3, devices=[0, 1], slots_per_device=2)
    assert pool.n_jobs == 4  # two GPUs, two slots each
    visible = [pool.slot_environment(s)["CUDA_VISIBLE_DEVICES"] for s in range(4)]
    assert visible == ["0", "0", "1", "1"]
    cpus = max(1, (os.cpu_count() or 1) // 4)
    assert {pool.slot_environment(s)["OMP_NUM_THREADS"] for s in range(4)} == {str(cpus)}
    assert "CUDA_VISIBLE_DEVICES" not in WorkerPool(None, None, None, 2).slot_environment(0)


def test_idle_slot_time_counts_until_the_last_job_started():
    times = SlotTimes(start=0.0, busy=[(0, 0.0, 10.0), (1, 0.0, 4.0), (2, 5.0, 10.0)], drained=6.0)
    assert times.idle_share(2) == pytest.approx(1 / 12)  # slot 2 idle from 4 to 5, of 2 x 6


@pytest.mark.slow  # ~15 s: a sweep of four jobs in a subprocess
def test_a_free_slot_takes_the_next_job_without_waiting_for_the_slowest(tiny_cifar, tmp_path):
    sweep = tmp_path / "sweep"
    proc = grid(tiny_cifar, sweep, "max_steps=60000,4,4,4", "eval_freq=60000",
                "hydra.sweeper.n_jobs=2", "model=custom",
                "model.name=tests.pool_models:environment_recorder",
                f"+model.folder={tmp_path / 'envs'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [record(j)["status"] for j in jobs(sweep)] == ["completed"] * 4
    busy = {
        n: (start, end) for n, start, end in json.loads((sweep / "pool.json").read_text())["busy"]
    }
    assert busy[2][0] < busy[0][1] and busy[3][0] < busy[0][1]  # started while job 0 ran
    cpus = str(max(1, (os.cpu_count() or 1) // 2))
    for job in jobs(sweep):
        pid = json.loads((job / "environment.json").read_text())["pid"]
        visible, threads = (tmp_path / "envs" / str(pid)).read_text().split("\n")
        assert visible == "" and threads == cpus  # no devices given; half the cores each
        assert json.loads((job / "environment.json").read_text())["threads"] == int(cpus)


@pytest.mark.slow  # ~20 s: two sweeps in subprocesses
def test_a_killed_job_is_retried_from_its_checkpoint_as_if_never_killed(tiny_cifar, tmp_path):
    runs = {}
    for name, killed in (("killed", True), ("whole", False)):
        marker = tmp_path / f"{name}.marker"
        if not killed:
            marker.write_text("never kill")
        sweep = tmp_path / name
        model = ["model=custom", "model.name=tests.pool_models:killed_once"]
        proc = grid(tiny_cifar, sweep, "seed=1,2", "max_steps=30", "eval_freq=10",
                    "checkpoint.every=10", *model, f"+model.marker={marker}",
                    "+model.at_step=15")  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = [record(j) for j in jobs(sweep)]
        if killed:
            assert "ended abnormally (exit code -9): retrying it" in proc.stdout + proc.stderr
    assert [r["status"] for r in runs["killed"]] == ["completed"] * 2
    for killed, whole in zip(runs["killed"], runs["whole"], strict=True):
        assert killed["final"] == whole["final"]  # bit-exact: resumed from step 10's checkpoint


@pytest.mark.slow  # ~10 s
def test_kill_9_of_the_sweep_leaves_no_trainer_running(tiny_cifar, tmp_path):
    sweep = tmp_path / "sweep"
    proc = grid(tiny_cifar, sweep, "max_steps=1000000", "eval_freq=100000", "seed=1,2",
                "hydra.sweeper.n_jobs=2", wait=False)  # fmt: skip
    deadline = time.time() + 60
    pids: list[int] = []
    while len(pids) < 2 and time.time() < deadline:
        time.sleep(0.2)
        found = list(sweep.glob("*/environment.json")) if sweep.is_dir() else []
        pids = [json.loads(p.read_text())["pid"] for p in found if p.stat().st_size]
    assert len(pids) == 2, "the jobs did not start"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while any(process_runs(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in pids if process_runs(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert alive == []


@pytest.mark.slow  # ~15 s: a search of two trials in a subprocess
def test_a_killed_trial_is_retried_in_its_folder_and_the_search_reaches_n_trials(
    tiny_cifar, tmp_path
):
    import optuna
    from optuna.trial import TrialState

    from dlexp.search.study_parts import open_storage

    storage, sweep = tmp_path / "s.journal", tmp_path / "sweep"
    search = [
        "hydra/sweeper=dlexp_optuna",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=s",
        "hydra.sweeper.n_trials=2",
        "optim.lr=choice(0.01,0.02)",
    ]
    model = ["model=custom", "model.name=tests.pool_models:killed_once",
             f"+model.marker={tmp_path / 'marker'}", "+model.at_step=15"]  # fmt: skip
    proc = grid(tiny_cifar, sweep, *search, *model, "max_steps=30", "eval_freq=10",
                "checkpoint.every=10")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = optuna.load_study(study_name="s", storage=open_storage(str(storage))).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2  # n_trials finished trials
    (retried,) = [t for t in trials if t.user_attrs.get("retries") == 1]
    folder = Path(retried.user_attrs["job_dir"])
    environment = json.loads((folder / "environment.json").read_text())
    assert len(environment["earlier"]) == 1  # the killed process's record: resumed, not rerun
    assert record(folder)["steps"] == 30 and len(jobs(sweep)) == 2  # one folder per trial


def test_each_slot_job_process_receives_its_gpu_on_a_cpu_machine(tiny_cifar, tmp_path):
    sweep = tmp_path / "sweep"
    proc = grid(tiny_cifar, sweep, "seed=1,2", "max_steps=2", "eval_freq=2", "device=cpu",
                "hydra.sweeper.devices=[3,5]", "model=custom",
                "model.name=tests.pool_models:environment_recorder",
                f"+model.folder={tmp_path / 'envs'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = sorted((p.read_text().split("\n")[0]) for p in (tmp_path / "envs").iterdir())
    assert seen == ["3", "5"]  # two slots, one per device, each job its slot's device
