"""A run's checkpoints, last and best, as the loop writes them (dlexp.run.checkpoints)."""

from __future__ import annotations

import json
import subprocess

from dlexp.run.checkpoint_file import load_checkpoint
from tests.runs import tiny_command


def test_best_is_kept_even_when_last_is_only_written_at_the_end(tiny_cifar, tmp_path):
    run = tmp_path / "run"
    subprocess.run(
        tiny_command(tiny_cifar, run, "max_steps=60", "checkpoint.every=0", "optim.lr=0.01"),
        check=True, capture_output=True,
    )  # fmt: skip
    best_step = json.loads((run / "metrics.json").read_text())["best"]["best_step"]
    _, best = load_checkpoint(run / "checkpoints" / "best.ckpt")
    _, last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert best["loop"]["step"] == best_step and last["loop"]["step"] == 60
