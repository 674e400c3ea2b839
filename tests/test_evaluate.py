"""dlexp-eval: a saved model's metrics equal the ones its run reported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dlexp.evaluate import main
from tests.runs import downgrade_checkpoints


def train_run(tiny_cifar, run, *overrides):
    args = [
        sys.executable, "-m", "dlexp", f"data.root={tiny_cifar}", "data.validation_size=50",
        "batch_size=20", "progress=false", f"hydra.run.dir={run}", *overrides,
    ]  # fmt: skip
    subprocess.run(args, check=True, capture_output=True)


@pytest.mark.parametrize("model", ["numpy_mlp", "torch_mlp"])
def test_eval_of_the_last_checkpoint_equals_the_runs_final_metrics(tiny_cifar, tmp_path, model):
    run = tmp_path / "run"
    train_run(tiny_cifar, run, f"model={model}", "max_steps=12", "eval_freq=5", "device=cpu")
    final = json.loads((run / "metrics.json").read_text())["final"]
    for split in ("val", "test"):
        main([str(run), f"split={split}", "device=cpu"])
        record = json.loads((run / "eval" / f"last_{split}.json").read_text())
        assert record["step"] == 12 and record["split"] == split
        assert record["metrics"] == {
            f"{split}/accuracy": final[f"{split}/accuracy"],
            f"{split}/loss": final[f"{split}/loss"],
        }


def test_eval_of_a_run_in_the_old_checkpoint_format(tiny_cifar, tmp_path):
    """A run of an older dlexp: `last.ckpt`, not `last.safetensors`."""
    run = tmp_path / "run"
    train_run(tiny_cifar, run, "model=torch_mlp", "max_steps=6", "eval_freq=3", "device=cpu")
    final = json.loads((run / "metrics.json").read_text())["final"]
    downgrade_checkpoints(run)
    main([str(run), "split=test", "device=cpu"])
    record = json.loads((run / "eval" / "last_test.json").read_text())
    assert record["checkpoint"] == str(run / "checkpoints" / "last.ckpt") and record["step"] == 6
    assert record["metrics"]["test/accuracy"] == final["test/accuracy"]


def test_eval_refuses_a_bad_checkpoint_in_one_line(tiny_cifar, tmp_path):
    train_run(tiny_cifar, tmp_path / "run", "max_steps=5")
    last = tmp_path / "run" / "checkpoints" / "last.safetensors"
    last.write_bytes(last.read_bytes()[:-100])  # truncated
    proc = subprocess.run(
        [sys.executable, "-m", "dlexp.evaluate", str(last)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and str(last) in proc.stderr, proc.stderr
    for argv, message in [
        ([str(tmp_path)], "has no checkpoint"),
        ([str(tmp_path / "run"), "split=train"], "split must be one of val, test"),
        ([str(tmp_path / "run"), "lr=1"], "lr cannot be set here"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, message
