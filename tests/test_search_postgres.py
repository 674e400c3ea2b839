"""Two search workers on one PostgreSQL study (a real server on loopback, started by the tests):
they share its trials, and when one is killed mid-trial with `kill -9` of its process group, its
trial is failed by the heartbeat, retried from its checkpoint by the other, and the study still
finishes every trial once. Checked against Optuna's own storage read back and the job folders."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.runs import DLEXP_TRAIN

N_TRIALS, HEARTBEAT_S, GRACE_S = 16, 1, 3
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def worker(url: str, tiny_cifar: Path, sweep: Path) -> subprocess.Popen:
    """One `dlexp-train hparams_search=...` worker in a process group of its own (as a shell or
    a SLURM task starts it), one slot, short NumPy trials that checkpoint every 100 steps."""
    command = [
        *DLEXP_TRAIN, "hparams_search=numpy_mlp", f"hydra.sweeper.storage={url}",
        f"hydra.sweeper.n_trials={N_TRIALS}", f"hydra.sweeper.heartbeat_interval={HEARTBEAT_S}",
        f"hydra.sweeper.grace_period={GRACE_S}", "hydra.sweeper.pruner.name=none",
        "optim.lr=tag(log,interval(1e-3,5e-3))", "model.n_hidden=choice([32],[64])",
        f"data.root={tiny_cifar}", "data.validation_size=50", "batch_size=20", "max_steps=600",
        "eval_freq=100", "checkpoint.every=100", "progress=false", f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    log = (sweep.parent / f"{sweep.name}.log").open("a")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def study(url: str) -> optuna.Study:
    (summary,) = optuna.get_all_study_summaries(url)  # one study: a restart joined it
    return optuna.load_study(study_name=summary.study_name, storage=url)


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout_s} s")


def live_in_group(pgid: int) -> list[int]:
    """The processes of a process group that are not zombies (from /proc)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


def checkpointed_unfinished_job(sweep: Path) -> Path | None:
    """A job folder of the sweep with a checkpoint and no metrics.json: a trial mid-way."""
    for folder in sweep.glob("*_*"):
        saved = (folder / "checkpoints" / "last.safetensors").exists()  # not a temporary file
        if saved and not (folder / "metrics.json").exists():
            return folder
    return None


@pytest.mark.slow  # ~60 s: two workers, 16 trials, a kill, a restart
def test_two_workers_share_a_study_and_survive_one_killed_mid_trial(
    postgres_database, tiny_cifar, tmp_path
):
    url = postgres_database
    a_sweep, b_sweep = tmp_path / "a", tmp_path / "b"
    a, b = worker(url, tiny_cifar, a_sweep), worker(url, tiny_cifar, b_sweep)
    try:
        victim = wait_for(lambda: checkpointed_unfinished_job(a_sweep), 120, "checkpointed job")
        os.killpg(a.pid, signal.SIGKILL)  # the worker, its job processes with it
        killed_at = time.monotonic()
        a.wait(timeout=10)
        # no trainer of the dead worker keeps running (zombies aside: init reaps them)
        wait_for(lambda: not live_in_group(a.pid), 10, "end of the killed worker's processes")
        running = [t for t in study(url).trials if t.state == TrialState.RUNNING]
        dead = next(t for t in running if t.user_attrs.get("sweep_dir") == str(a_sweep))
        wait_for(lambda: study(url).trials[dead.number].state == TrialState.FAIL, 15, "failure")
        failed_after = time.monotonic() - killed_at

        def retry_started():
            return [t for t in study(url).trials if t.user_attrs.get("retry_of") == dead.number]

        wait_for(retry_started, 60, "retry taken by the surviving worker")
        a = worker(url, tiny_cifar, a_sweep)  # restarted: it joins the same study
        assert b.wait(timeout=240) == 0, (tmp_path / "b.log").read_text()[-3000:]
        assert a.wait(timeout=240) == 0, (tmp_path / "a.log").read_text()[-3000:]
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)

    assert failed_after <= GRACE_S + HEARTBEAT_S + 2, failed_after  # + the test's polling
    trials = study(url).trials  # (study() also checks there is one study: no second one)
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == N_TRIALS
    params = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(params)) == N_TRIALS  # no parameter set trained twice
    assert all(t.user_attrs.get("surplus") for t in trials if t.state == TrialState.FAIL
               and t.number != dead.number)  # fmt: skip
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == dead.number]
    assert retry.state in FINISHED and retry.params == dead.params
    assert Path(retry.user_attrs["job_dir"]) == victim  # in the dead trial's folder ...
    log = (victim / "train.log").read_text()
    resumed = re.search(r"\(resumed: (\d+)-600\)", log)
    assert resumed and int(resumed.group(1)) > 1, log[-2000:]  # ... from its checkpoint
    rows = (b_sweep / "trials.md").read_text()
    assert f"asked again as trial {retry.number}" in rows

    best = study(url).best_trial
    best_yaml = (b_sweep / "best.yaml").read_text()
    assert f"(trial {best.number}, val/accuracy {best.value:.4f})" in best_yaml
