"""Training runs on the real CIFAR-10 (marker `realdata`; skipped when the data is absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlexp.backends import build_backend
from dlexp.config_checks import check_config
from dlexp.data import BatchSampler, load_cifar10
from dlexp.train import train
from tests.conftest import compose_train

pytestmark = pytest.mark.realdata

# Per-step train loss may differ between the three batch norms by float32 rounding only; over
# 30 Adam steps that drift stays far below this (measured in docs/results.md).
NORM_LOSS_ATOL = 0.02


def test_default_numpy_run_reaches_the_ci_gate(real_cifar, tmp_path):
    cfg = compose_train([f"data.root={real_cifar}", "progress=false", f"output_dir={tmp_path}"])
    train(cfg)
    final = json.loads((tmp_path / "metrics.json").read_text())["final"]
    assert final["test/accuracy"] >= 0.44


def thirty_step_losses(real_cifar, norm: str, data) -> np.ndarray:
    """Per-step train losses of the ConvNet with `norm`, same seed, same batches."""
    cfg = compose_train(
        [f"data.root={real_cifar}", "model=convnet", f"norm={norm}", "device=cpu", "seed=3",
         "log_freq=1", "output_dir=/unused"]
    )  # fmt: skip
    entry = check_config(cfg)
    model_rng, sampler_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(2)
    )
    backend = build_backend(cfg, entry, data, model_rng)  # seeds torch from cfg.seed
    sampler = BatchSampler(len(data.train), cfg.batch_size, sampler_rng)
    losses = []
    for _ in range(30):
        backend.train_step(sampler.next_batch())
        losses.append(backend.pop_train_stats()[0])
    return np.array(losses)


def test_three_batch_norms_train_the_convnet_alike(real_cifar):
    data = load_cifar10(real_cifar)
    reference = thirty_step_losses(real_cifar, "torch_bn", data)
    assert reference[-10:].mean() < reference[:3].mean()  # it learns
    for norm in ("custom_bn", "autograd_bn"):
        losses = thirty_step_losses(real_cifar, norm, data)
        np.testing.assert_allclose(losses, reference, atol=NORM_LOSS_ATOL, err_msg=norm)
