"""Stop signals outside the single-run path: a second signal, a stopped sweep, a joblib worker's
exception, and resumes that extend a run or find nothing left to run."""

from __future__ import annotations

import csv
import pickle
import signal
import subprocess
import sys

import pytest

from dlexp.run.checkpoint_file import load_checkpoint
from dlexp.run.signals import RunAborted, RunInterrupted, StopRequests
from tests.test_resume import command, start, wait_for_checkpoint


def test_a_second_signal_aborts_with_its_own_exit_status():
    with StopRequests() as stop:
        stop._handle(signal.SIGTERM, None)
        assert stop.requested and stop.exit_status() == 143
        with pytest.raises(RunAborted) as aborted:
            stop._handle(signal.SIGTERM, None)
    assert aborted.value.exit_status == 143 and str(aborted.value) == "aborted by a second SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back


def test_run_interrupted_crosses_a_process_boundary():
    """joblib's workers send a job's exception back pickled."""
    sent = RunInterrupted("stopped by SIGINT at step 7; resume with: dlexp-train resume=x", 2)
    received = pickle.loads(pickle.dumps(sent))
    assert (received.message, received.signal, received.exit_status) == (sent.message, 2, 130)


def test_a_sweep_stopped_by_ctrl_c_still_writes_its_summary(tiny_cifar, tmp_path):
    sweep = tmp_path / "sweep"
    args = command(tiny_cifar, tmp_path / "unused", "max_steps=100000")
    args = [*args[:3], "-m", "seed=1,2", *args[3:], f"hydra.sweep.dir={sweep}"]
    args.append("hydra.sweep.subdir=${hydra.job.num}")  # job folders named 0, 1
    proc = start(args)
    wait_for_checkpoint(proc, sweep / "0")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["job"], r["status"]) for r in rows] == [("0", "interrupted")]


def test_an_extended_run_stays_extended_on_its_next_resume(tiny_cifar, tmp_path):
    run = tmp_path / "run"
    subprocess.run(command(tiny_cifar, run, "max_steps=40"), check=True, capture_output=True)
    resume = [sys.executable, "-m", "dlexp", f"resume={run}", "progress=false"]
    subprocess.run([*resume, "max_steps=60"], check=True, capture_output=True)
    _, meta = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert meta["loop"]["step"] == meta["loop"]["max_steps"] == 60
    again = subprocess.run(resume, capture_output=True, text=True)
    assert again.returncode == 2
    assert "the checkpoint is at step 60 and max_steps is 60: nothing to run" in again.stderr


def test_best_is_kept_even_when_last_is_only_written_at_the_end(tiny_cifar, tmp_path):
    run = tmp_path / "run"
    subprocess.run(
        command(tiny_cifar, run, "max_steps=60", "checkpoint.every=0", "optim.lr=0.01"),
        check=True, capture_output=True,
    )  # fmt: skip
    import json

    best_step = json.loads((run / "metrics.json").read_text())["best"]["best_step"]
    _, best = load_checkpoint(run / "checkpoints" / "best.ckpt")
    _, last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert best["loop"]["step"] == best_step and last["loop"]["step"] == 60
