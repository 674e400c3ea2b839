"""Optimizers and schedules through the one entrypoint, read back from the event files."""

from __future__ import annotations

import json

import pytest
import torch

from dlexp.training import train
from tests.runs import read_scalars

MAX_STEPS = 12


def logged_lrs(tiny_cfg, run, *overrides: str) -> list[float]:
    steps = [f"max_steps={MAX_STEPS}", "eval_freq=12", "log_freq=1", f"output_dir={run}"]
    train(tiny_cfg(*overrides, *steps))
    return [e.value for e in read_scalars(run)["train/lr"]]


def torch_reference(lr: float, make_scheduler) -> list[float]:
    """The learning rate each step uses under a torch.optim.lr_scheduler."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(MAX_STEPS):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize(
    "model", ["numpy_mlp", "torch_mlp", pytest.param("convnet", marks=pytest.mark.slow)]
)
def test_adamw_with_cosine_trains_every_model(tiny_cfg, tmp_path, model):
    small = ["batch_size=8", "eval_batch_size=50"] if model == "convnet" else []
    rates = logged_lrs(
        tiny_cfg, tmp_path / "run", f"model={model}", "optim=adamw", "optim.lr=1e-3",
        "sched=cosine", "sched.warmup_steps=3", "device=cpu", *small,
    )  # fmt: skip
    warmup = torch.optim.lr_scheduler.LinearLR
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR
    expected = torch_reference(
        1e-3,
        lambda opt: torch.optim.lr_scheduler.SequentialLR(
            opt, [warmup(opt, 1 / 4, 1.0, 3), cosine(opt, MAX_STEPS - 3)], milestones=[3]
        ),
    )
    assert rates == pytest.approx(expected, rel=1e-6)  # event files hold float32
    final = json.loads((tmp_path / "run" / "metrics.json").read_text())["final"]
    assert all(v == v for v in final.values())


@pytest.mark.parametrize(
    "sched", [["sched=step", "sched.step_size=5", "sched.gamma=0.5"], ["sched=onecycle"]]
)
def test_both_backends_log_the_same_learning_rates(tiny_cfg, tmp_path, sched):
    numpy_rates = logged_lrs(tiny_cfg, tmp_path / "np", "model=numpy_mlp", "optim=adam", *sched)
    torch_rates = logged_lrs(tiny_cfg, tmp_path / "pt", "model=torch_mlp", "optim=adam", *sched)
    assert numpy_rates == torch_rates and len(set(numpy_rates)) > 1


@pytest.mark.parametrize("model", ["numpy_mlp", "torch_mlp"])
def test_sgd_nesterov_reaches_the_optimizer(tiny_cfg, tmp_path, model):
    def train_loss(nesterov: str) -> float:
        run = tmp_path / nesterov
        momentum = ["optim.momentum=0.9", f"optim.nesterov={nesterov}", "max_steps=6"]
        train(
            tiny_cfg(f"model={model}", *momentum, "device=cpu", "log_freq=6", f"output_dir={run}")
        )
        return json.loads((run / "metrics.json").read_text())["final"]["train/loss"]

    assert train_loss("true") != train_loss("false")


def test_debug_overfit_drives_the_training_loss_towards_zero(tiny_cfg, tmp_path):
    cfg = tiny_cfg("debug=overfit")
    assert cfg.data.train_subset == cfg.batch_size == 20
    train(cfg)
    losses = [e.value for e in read_scalars(tmp_path / "run")["train/loss"]]
    assert losses[-1] < 0.05 * losses[0]
