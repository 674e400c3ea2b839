"""Augmentation inside both backends' training: train batches only, the same on both, seeded;
label smoothing in the torch backend's loss."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from dlexp.build import augment_generator
from dlexp.data import BatchSampler
from dlexp.data.augment import augment_batch, draw_augment
from dlexp.numpy_nn import softmax_cross_entropy
from dlexp.training import train
from tests.runs import build_run


def backend_for(tiny_cfg, *overrides):
    backend, _, data = build_run(tiny_cfg("data.augment=flip_crop", "device=cpu", *overrides))
    return backend, data


def expected_batch(data, seed: int = 1):
    """The first training batch of sampler seed 1, augmented as seed `seed`'s stream draws it."""
    batch = BatchSampler(len(data.train), 20, np.random.default_rng(1)).next_batch()
    params = draw_augment(augment_generator(seed), 20, "flip_crop")
    return batch, augment_batch(data.train.images[batch.indices], params)


def numpy_loss(model, images, labels) -> float:
    """The seed's modules, one by one: the loss the fused step must reproduce."""
    return float(
        softmax_cross_entropy(model.forward_logits(images.reshape(len(images), -1)), labels)[0]
    )


def test_numpy_train_batches_are_augmented_and_eval_splits_never(tiny_cfg):
    backend, data = backend_for(tiny_cfg, "model=numpy_mlp")
    before = copy.deepcopy(backend.model)
    batch, augmented = expected_batch(data)
    labels = data.train.labels[batch.indices]
    assert not np.array_equal(augmented, data.train.images[batch.indices])
    backend.train_step(batch)
    loss, _ = backend.pop_train_stats()
    assert loss == pytest.approx(numpy_loss(before, augmented, labels), rel=1e-6)
    plain = numpy_loss(before, data.train.images[batch.indices], labels)
    assert loss != pytest.approx(plain, rel=1e-6)

    evaluated = backend.evaluate("val")["loss"]  # the split exactly as prepared
    assert evaluated == pytest.approx(numpy_loss(backend.model, data.val.images, data.val.labels))


def test_torch_train_batches_are_augmented_and_eval_splits_never(tiny_cfg):
    backend, data = backend_for(tiny_cfg, "model=torch_mlp")
    seen = []
    forward = backend.model.forward

    def spy(x):  # an instance attribute over nn.Module.forward: no hook in dlexp needed
        seen.append(x.detach().numpy().copy())
        return forward(x)

    backend.model.forward = spy
    sampler = BatchSampler(len(data.train), 20, np.random.default_rng(1))
    batch = sampler.next_batch()
    backend.train_step(batch)
    expected_params = draw_augment(augment_generator(1), 20, "flip_crop")  # seed=1's stream
    expected = augment_batch(data.train.images[batch.indices], expected_params)
    np.testing.assert_array_equal(seen[0].reshape(expected.shape), expected)
    assert not np.array_equal(expected, data.train.images[batch.indices])

    seen.clear()
    backend.evaluate("val")
    np.testing.assert_array_equal(  # evaluation sees the split exactly as prepared
        np.concatenate(seen).reshape(data.val.images.shape), data.val.images
    )


def test_augmented_runs_are_deterministic_per_seed(tiny_cfg, tmp_path):
    def run(seed):
        overrides = ("data.augment=flip_crop", "optim.lr=0.1", "max_steps=15", "eval_freq=5")
        train(tiny_cfg(*overrides, f"seed={seed}"))
        record = json.loads((tmp_path / "run" / "metrics.json").read_text())
        return record["final"]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_label_smoothing_is_torch_cross_entropy_with_smoothing(tiny_cfg):
    backend, data = backend_for(tiny_cfg, "model=torch_mlp", "label_smoothing=0.2")
    backend.augment = "none"
    sampler = BatchSampler(len(data.train), 20, np.random.default_rng(1))
    batch = sampler.next_batch()
    x = torch.from_numpy(data.train.images[batch.indices])
    y = torch.from_numpy(data.train.labels[batch.indices])
    with torch.no_grad():
        logits = backend.model(x)
    smoothed = torch.nn.CrossEntropyLoss(label_smoothing=0.2)(logits, y).item()
    backend.train_step(batch)
    loss, _ = backend.pop_train_stats()
    assert loss == pytest.approx(smoothed, rel=1e-6)
