"""Runs killed (SIGKILL) or stopped (SIGINT, SIGTERM, SIGUSR2) in a subprocess, then resumed,
against the same run left alone: metrics.json and final parameters bit-identical."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlexp.run.checkpoint_file import load_checkpoint
from tests.runs import (
    DLEXP_TRAIN,
    WritesAMarker,
    downgrade_checkpoints,
    start,
    tiny_command,
    wait_for_checkpoint,
)

TORCH = ["device=cpu", "deterministic=true"]
CASES = {  # name: overrides (evaluation, and so a checkpoint, every 20 steps)
    "numpy_mlp-sgd": ["optim.momentum=0.9", "sched=step", "sched.step_size=30"],
    "numpy_mlp-adam": ["optim=adam", "optim.lr=1e-3"],
    "torch_mlp-bn-dropout": ["model=torch_mlp", "norm=torch_bn", "model.dropout=0.3", *TORCH],
    "convnet-custom_bn": ["model=convnet", "norm=custom_bn", "batch_size=8", *TORCH],
}


def model_arrays(run: Path) -> dict:
    arrays, _ = load_checkpoint(run / "checkpoints" / "last.safetensors")
    return {k: np.asarray(v) for k, v in arrays.items() if k.startswith("backend/model/")}


def comparable(run: Path) -> dict:
    record = json.loads((run / "metrics.json").read_text())
    return {k: v for k, v in record.items() if k != "timing"}


def scalar_points(run: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run))  # purges points a restart replaced, as TensorBoard does
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


SLOW_CASES = ("numpy_mlp-adam", "torch_mlp-bn-dropout", "convnet-custom_bn")  # ~20 s each


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CASES else n for n in CASES]
)
def test_sigkill_then_resume_equals_the_run_left_alone(tiny_cifar, tmp_path, name):
    steps = "max_steps=30" if name.startswith("convnet") else "max_steps=300"
    overrides = [*CASES[name], steps]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run(tiny_command(tiny_cifar, reference, *overrides), check=True, capture_output=True)

    proc = start(tiny_command(tiny_cifar, killed, *overrides))
    wait_for_checkpoint(proc, killed)
    time.sleep(random.uniform(0, 0.3))  # somewhere after the first checkpoint
    proc.kill()
    proc.communicate()
    assert (
        comparable(killed).get("status") != "completed"
        if (killed / "metrics.json").exists()
        else True
    )
    resumed = subprocess.run(  # the case's own overrides again: equal values are fine
        [*DLEXP_TRAIN, f"resume={killed}", "progress=false", *CASES[name]],
        capture_output=True, text=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    assert comparable(killed) == comparable(reference)
    expected, got = model_arrays(reference), model_arrays(killed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert np.array_equal(expected[key], got[key]), key
    assert scalar_points(killed) == scalar_points(reference)  # no doubled points
    assert (killed / ".hydra" / "resume-1" / "config.yaml").is_file()
    assert (killed / ".hydra" / "config.yaml").read_text() == (
        reference / ".hydra" / "config.yaml"
    ).read_text().replace(str(reference), str(killed))


def started_beside_a_reference(tiny_cifar, tmp_path, name: str, overrides: list[str]):
    """(reference, folder, process): a run left alone in `reference`, then the same command
    started in `folder` and waited for until its first checkpoint."""
    reference, folder = tmp_path / "reference", tmp_path / name
    subprocess.run(tiny_command(tiny_cifar, reference, *overrides), check=True, capture_output=True)
    proc = start(tiny_command(tiny_cifar, folder, *overrides))
    wait_for_checkpoint(proc, folder)
    return reference, folder, proc


def test_a_run_killed_under_the_old_checkpoint_format_resumes(tiny_cifar, tmp_path):
    """A run folder with only `last.ckpt` (and `best.ckpt`), as an older dlexp left it."""
    overrides = [*CASES["numpy_mlp-sgd"], "max_steps=300"]
    reference, killed, proc = started_beside_a_reference(tiny_cifar, tmp_path, "killed", overrides)
    proc.kill()
    proc.communicate()
    downgrade_checkpoints(killed)
    old_last = (killed / "checkpoints" / "last.ckpt").read_bytes()
    resumed = subprocess.run(
        [*DLEXP_TRAIN, f"resume={killed}", "progress=false"], capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert comparable(killed) == comparable(reference)
    expected, got = model_arrays(reference), model_arrays(killed)  # the new files from then on
    assert expected.keys() == got.keys()
    for key in expected:
        assert np.array_equal(expected[key], got[key]), key
    assert (killed / "checkpoints" / "last.ckpt").read_bytes() == old_last  # never overwritten


@pytest.mark.parametrize(
    ("sig", "status", "ignore_sigint"),
    [(signal.SIGINT, 130, False), (signal.SIGINT, 130, True), (signal.SIGTERM, 143, False),
     (signal.SIGUSR2, 128 + signal.SIGUSR2, False)],
)  # fmt: skip
def test_a_stop_signal_checkpoints_and_says_how_to_resume(
    tiny_cifar, tmp_path, sig, status, ignore_sigint
):
    run = tmp_path / "run"
    proc = start(tiny_command(tiny_cifar, run, "max_steps=100000"), ignore_sigint=ignore_sigint)
    wait_for_checkpoint(proc, run)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    record = json.loads((run / "metrics.json").read_text())
    name = signal.Signals(sig).name
    assert record["status"] == "interrupted"
    assert record["reason"] == f"stopped by {name} at step {record['steps']}"
    assert err.strip().splitlines()[-1] == (
        f"dlexp-train: stopped by {name} at step {record['steps']}; "
        f"resume with: dlexp-train resume={run}"
    )
    _, meta = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["loop"]["step"] == record["steps"]  # the step it stopped at was checkpointed


def test_resume_refuses_a_changed_key_and_a_longer_cosine(tiny_cifar, tmp_path):
    run = tmp_path / "run"
    subprocess.run(
        tiny_command(tiny_cifar, run, "max_steps=40", "sched=cosine"),
        check=True,
        capture_output=True,
    )
    before = files_of(run)
    for override, message in [
        ("optim.lr=0.5", "resume: optim.lr would be 0.5 but the run being resumed has 0.002"),
        (
            "model.n_hidden=[7]",
            "resume: model.n_hidden would be [7] but the run being resumed has [100]",
        ),
        ("max_steps=80", "resume: sched=cosine is shaped by max_steps=40"),
    ]:
        proc = subprocess.run(
            [*DLEXP_TRAIN, f"resume={run}", override, "progress=false"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert files_of(run) == before  # nothing in the run folder was overwritten
    done = subprocess.run(
        [*DLEXP_TRAIN, f"resume={run}", "optim.lr=0.002", "progress=false"],
        capture_output=True, text=True,
    )  # fmt: skip
    # an equal value passes the key check; a finished run then has nothing left to run
    assert done.returncode == 2
    assert "resume: the checkpoint is at step 40 and max_steps is 40: nothing to run" in done.stderr


@pytest.mark.slow  # ~14 s: two 300-step runs in subprocesses
def test_a_requeued_job_finds_its_checkpoint_and_resumes_by_itself(tiny_cifar, tmp_path):
    """What submitit does after a preemption: the same command, in the same folder."""
    overrides = [*CASES["numpy_mlp-sgd"], "max_steps=300"]
    reference, requeued, proc = started_beside_a_reference(
        tiny_cifar, tmp_path, "requeued", overrides
    )
    proc.send_signal(signal.SIGUSR2)  # submitit's warning before the time limit
    proc.communicate(timeout=60)
    again = subprocess.run(
        tiny_command(tiny_cifar, requeued, *overrides), capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stdout + again.stderr
    assert comparable(requeued) == comparable(reference)


def files_of(run: Path) -> dict:
    """Every file of a run folder, but the configs that each resume adds in .hydra/resume-<n>/."""
    return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and "resume-" not in str(p)}


def test_a_bad_checkpoint_is_one_line_and_leaves_the_run_folder_alone(tiny_cifar, tmp_path):
    import pickle

    run, other = tmp_path / "run", tmp_path / "other"
    for folder, extra in ((run, []), (other, ["model.n_hidden=[7]"])):
        subprocess.run(
            tiny_command(tiny_cifar, folder, "max_steps=20", *extra),
            check=True,
            capture_output=True,
        )
    last = run / "checkpoints" / "last.safetensors"
    good = last.read_bytes()
    flipped = bytearray(good)
    flipped[-10] ^= 0xFF
    marker = tmp_path / "code-ran"
    bad_files = {
        "truncated": good[: len(good) // 2],
        "checksum": bytes(flipped),
        "another model": (other / "checkpoints" / "last.safetensors").read_bytes(),
        "pickle": pickle.dumps(WritesAMarker(marker)),
    }
    for name, content in bad_files.items():
        last.write_bytes(content)
        before = files_of(run)
        proc = subprocess.run(  # extending the finished run, which sched=none allows
            [*DLEXP_TRAIN, f"resume={run}", "max_steps=40", "progress=false"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 2, (name, proc.stderr)
        assert proc.stderr.count("\n") == 1 and str(last) in proc.stderr, (name, proc.stderr)
        assert files_of(run) == before, name
    assert not marker.exists()


def test_an_extended_run_stays_extended_on_its_next_resume(tiny_cifar, tmp_path):
    run = tmp_path / "run"
    subprocess.run(tiny_command(tiny_cifar, run, "max_steps=40"), check=True, capture_output=True)
    resume = [*DLEXP_TRAIN, f"resume={run}", "progress=false"]
    subprocess.run([*resume, "max_steps=60"], check=True, capture_output=True)
    _, meta = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["loop"]["step"] == meta["loop"]["max_steps"] == 60
    again = subprocess.run(resume, capture_output=True, text=True)
    assert again.returncode == 2
    assert "the checkpoint is at step 60 and max_steps is 60: nothing to run" in again.stderr


def test_a_refused_resume_leaves_the_run_folder_byte_identical(tiny_cifar, tmp_path):
    """Issue 23 item 8: not even Hydra's .hydra/resume-<n>/ or a log line stays behind."""
    run = tmp_path / "run"
    subprocess.run(tiny_command(tiny_cifar, run, "max_steps=20"), check=True, capture_output=True)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    folders = {p for p in run.rglob("*") if p.is_dir()}
    proc = subprocess.run(
        [*DLEXP_TRAIN, f"resume={run}", "seed=5", "max_steps=40", "progress=false"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "dlexp-train: error: resume: seed would be 5 but the run being resumed has 1; "
        "a resume may change only max_steps, device, progress, log_freq, distributed"
    )
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert {p for p in run.rglob("*") if p.is_dir()} == folders
