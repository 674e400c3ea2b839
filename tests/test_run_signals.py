"""Stop signals (dlexp.run.signals) outside the single-run path: a second signal, a stopped
sweep, a joblib worker's exception. A single run stopped and resumed is in test_run_resume.py."""

from __future__ import annotations

import csv
import os
import pickle
import shlex
import signal
import subprocess

import pytest

from dlexp.run.signals import RunAborted, RunInterrupted, StopRequests
from tests.runs import DLEXP_TRAIN, start, tiny_command, wait_for_checkpoint


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
    args = tiny_command(tiny_cifar, tmp_path / "unused", "max_steps=100000")
    n = len(DLEXP_TRAIN)
    args = [*args[:n], "-m", "seed=1,2", *args[n:], f"hydra.sweep.dir={sweep}"]
    args.append("hydra.sweep.subdir=${hydra.job.num}")  # job folders named 0, 1
    proc = start(args)
    wait_for_checkpoint(proc, sweep / "0")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["job"], r["status"]) for r in rows] == [("0", "interrupted")]


def test_ctrl_c_before_step_1_gives_the_command_that_reruns(tiny_cifar, tmp_path):
    """A real SIGINT while the model is built: nothing to resume, so the line reruns instead."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "interrupting.py").write_text(
        "import os, signal\n"
        "from dlexp.models.numpy_mlp import numpy_mlp\n\n\n"
        "def mlp(**kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during start-up\n"
        "    return numpy_mlp(**kwargs)\n\n\n"
        "mlp.dlexp_backend = 'numpy'\n"
    )
    run = tmp_path / "run"
    args = tiny_command(tiny_cifar, run, "model=custom", "model.name=interrupting:mlp")
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    rerun = shlex.join(["dlexp-train", *args[len(DLEXP_TRAIN) :]])
    assert proc.stderr.strip().splitlines()[-1] == (
        f"dlexp-train: stopped by SIGINT before step 1: nothing to resume before the first "
        f"step; rerun with: {rerun}"
    )
