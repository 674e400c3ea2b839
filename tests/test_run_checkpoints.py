"""A run's checkpoints, last and best, as the loop writes them and resume finds them
(dlexp.run.checkpoints)."""

from __future__ import annotations

import json
import subprocess

import pytest

from dlexp.errors import ConfigError
from dlexp.run.checkpoint_file import load_checkpoint
from dlexp.run.checkpoints import BEST, LAST, find_checkpoint
from dlexp.run.resume import checkpoint_to_resume
from tests.runs import tiny_command


def test_best_is_kept_even_when_last_is_only_written_at_the_end(tiny_cifar, tmp_path):
    run = tmp_path / "run"
    subprocess.run(
        tiny_command(tiny_cifar, run, "max_steps=60", "checkpoint.every=0", "optim.lr=0.01"),
        check=True, capture_output=True,
    )  # fmt: skip
    best_step = json.loads((run / "metrics.json").read_text())["best"]["best_step"]
    _, best = load_checkpoint(run / "checkpoints" / "best.safetensors")
    _, last = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert best["loop"]["step"] == best_step and last["loop"]["step"] == 60


def test_the_newest_format_is_found_first_then_the_old_name(tmp_path):
    folder = tmp_path / "checkpoints"
    assert find_checkpoint(tmp_path) is None
    with pytest.raises(ConfigError, match=r"has no checkpoint \(.*last\.safetensors does not"):
        checkpoint_to_resume(tmp_path)
    folder.mkdir()
    for name in ("last.ckpt", "best.ckpt"):  # a run of an older dlexp
        (folder / name).write_bytes(b"")
    assert checkpoint_to_resume(tmp_path) == find_checkpoint(tmp_path) == folder / "last.ckpt"
    assert find_checkpoint(tmp_path, BEST) == folder / "best.ckpt"
    for name in ("last.safetensors", "best.safetensors"):  # ... resumed by this one
        (folder / name).write_bytes(b"")
    assert checkpoint_to_resume(tmp_path) == find_checkpoint(tmp_path, LAST) == folder / LAST
    assert find_checkpoint(tmp_path, BEST) == folder / "best.safetensors"
