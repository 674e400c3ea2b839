"""Runs for the tests: dlexp-train started as a command, a run's parts built as train() builds
them, and what a run wrote, read back."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlexp.build import augment_generator, build_parts, load_run_data, make_backend, seed_generators
from dlexp.data import BatchSampler
from dlexp.run.atomic_write import write_atomically
from dlexp.run.checkpoint_file import load_checkpoint

DLEXP_TRAIN = [sys.executable, "-m", "dlexp"]  # dlexp-train; it registers dlexp's sweepers


def tiny_command(tiny_cifar: Path, run: Path, *overrides: str) -> list[str]:
    """dlexp-train on the tiny data into `run`, evaluating (and so checkpointing) every 20 steps."""
    return [
        *DLEXP_TRAIN, f"data.root={tiny_cifar}", "data.validation_size=50",
        "batch_size=20", "eval_freq=20", "log_freq=5", "progress=false",
        f"hydra.run.dir={run}", *overrides,
    ]  # fmt: skip


def tiny_sweep(tiny_cifar: Path, sweep: Path) -> list[str]:
    """The overrides of a 4-step multirun on the tiny data into `sweep`, evaluating every 2."""
    return [
        f"data.root={tiny_cifar}", "data.validation_size=50", "batch_size=20", "max_steps=4",
        "eval_freq=2", "progress=false", f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip


def assert_refused(proc: subprocess.CompletedProcess, line: str, *untouched: Path) -> None:
    """Exit status 2 with `line` alone on stderr, and none of `untouched` created."""
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [line]
    for path in untouched:
        assert not path.exists(), path


def start(args: list[str], ignore_sigint: bool = False) -> subprocess.Popen:
    """A command in the background; with `ignore_sigint`, as a shell script's background job."""

    def preexec():
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=preexec,
    )  # fmt: skip


def wait_for_checkpoint(proc: subprocess.Popen, run: Path, timeout: float = 120) -> None:
    last = run / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + timeout
    while not last.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.02)


def build_run(cfg):
    """The backend, batch sampler and data that train(cfg) would build, without the loop."""
    model_rng, sampler_rng = seed_generators(cfg.seed)
    parts = build_parts(cfg, model_rng)
    data = load_run_data(cfg)
    backend = make_backend(parts, data, cfg, augment_generator(cfg.seed))
    return backend, BatchSampler(len(data.train), cfg.batch_size, sampler_rng), data


def read_scalars(run_dir) -> dict[str, list]:
    """Every scalar event of a run folder, by tag."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}


def hparams_records(run_dir) -> dict:
    """{tag: HParams plugin data} as the run's event file holds them."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    return {
        tag: plugin_data_pb2.HParamsPluginData.FromString(data) for tag, data in content.items()
    }


def session_start(run_dir):
    """The run's HParams session start info: its hparams and its Trial ID (group name)."""
    return hparams_records(run_dir)["_hparams_/session_start_info"].session_start_info


class WritesAMarker:
    """Unpickling this creates the file `path`: what a malicious checkpoint would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def write_old_checkpoint(path: Path, arrays: dict, meta: dict) -> None:
    """A checkpoint in the format before safetensors (version 1, `last.ckpt`), as dlexp wrote it:
    a header line, the metadata as JSON, then np.savez or torch.save of the arrays."""
    numpy_arrays = [k for k, a in arrays.items() if isinstance(a, np.ndarray)]
    meta = {
        **meta, "format_version": 1,
        "shapes": {k: list(a.shape) for k, a in arrays.items()},
        "dtypes": {k: str(a.dtype).removeprefix("torch.") for k, a in arrays.items()},
        "numpy_arrays": numpy_arrays,
    }  # fmt: skip
    buffer = io.BytesIO()
    if meta["backend"] == "numpy":
        np.savez(buffer, allow_pickle=False, **arrays)
    else:
        import torch  # only for a torch run's state

        tensors = {
            k: torch.from_numpy(a.copy()) if isinstance(a, np.ndarray) else a.detach()
            for k, a in arrays.items()
        }
        torch.save(tensors, buffer)
    payload = buffer.getvalue()
    meta_bytes = json.dumps(meta, separators=(",", ":"), default=lambda x: x.item()).encode()
    digest = hashlib.sha256(meta_bytes + payload).hexdigest()
    header = f"dlexp-checkpoint 1 {digest} {len(meta_bytes)} {len(payload)}\n".encode()
    write_atomically(path, (header, meta_bytes, payload))  # as the old writer did: fsync too


def downgrade_checkpoints(run: Path) -> None:
    """Rewrite a run's checkpoints in the format before safetensors (`last.ckpt`, `best.ckpt`),
    as a run of an older dlexp left them."""
    for path in (run / "checkpoints").glob("*.safetensors"):
        write_old_checkpoint(path.with_suffix(".ckpt"), *load_checkpoint(path))
        path.unlink()


def process_runs(pid: int) -> bool:
    """Whether process `pid` runs (Linux): a zombie, dead but not yet reaped by init, does not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
