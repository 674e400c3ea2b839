"""dlexp.numpy_nn modules' contract: fresh params, overwritten grads, float32, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.numpy_nn import (
    CrossEntropyModule,
    LeakyReLUModule,
    LinearModule,
    SoftMaxModule,
    softmax_cross_entropy,
)
from tests.reference import one_hot

# --- contract: fresh params, overwritten grads, float32 ---------------------------------------


def test_linear_forward_reads_the_weight_on_every_call():
    rng = np.random.default_rng(8)
    layer = LinearModule(3, 2, rng=rng)
    x = rng.standard_normal((4, 3))
    before = layer.forward(x).copy()
    layer.params["weight"][1, 2] += 0.5  # in place, as a gradient check does
    layer.params["bias"][0] -= 1.0
    after = layer.forward(x)
    np.testing.assert_allclose(after[:, 1] - before[:, 1], 0.5 * x[:, 2])
    np.testing.assert_allclose(after[:, 0] - before[:, 0], -1.0)


def test_linear_backward_overwrites_grads():
    rng = np.random.default_rng(9)
    layer = LinearModule(3, 2, rng=rng)
    x, dout1, dout2 = (
        rng.standard_normal((4, 3)),
        rng.standard_normal((4, 2)),
        rng.standard_normal((4, 2)),
    )
    layer.forward(x)
    layer.backward(dout1)
    layer.backward(dout1)
    np.testing.assert_allclose(layer.grads["weight"], dout1.T @ x)  # not 2x: no accumulation
    layer.backward(dout2)
    np.testing.assert_allclose(layer.grads["weight"], dout2.T @ x)
    np.testing.assert_allclose(layer.grads["bias"], dout2.sum(axis=0))


def test_linear_layout_matches_the_seed():
    layer = LinearModule(5, 3, rng=np.random.default_rng(0))
    assert layer.params["weight"].shape == layer.grads["weight"].shape == (3, 5)
    assert layer.params["bias"].shape == layer.grads["bias"].shape == (3,)
    assert layer.params["weight"].dtype == np.float64  # NumPy's default unless dtype= says so
    assert np.all(layer.params["bias"] == 0)


def test_linear_init_is_seeded_by_the_generator():
    a = LinearModule(4, 3, rng=np.random.default_rng(1)).params["weight"]
    b = LinearModule(4, 3, rng=np.random.default_rng(1)).params["weight"]
    np.testing.assert_array_equal(a, b)
    assert 0 < a.std() < 1e-3  # the course's N(0, 1e-4) init


def test_modules_keep_float32():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    layer, act, soft = (
        LinearModule(5, 4, rng=rng, dtype=np.float32),
        LeakyReLUModule(0.1),
        SoftMaxModule(),
    )
    layer.params["weight"][:] = rng.standard_normal((4, 5))
    probs = soft.forward(act.forward(layer.forward(x)))
    y = one_hot(rng.integers(0, 4, 6), 4)  # float64 targets must not upcast the backward
    dx = layer.backward(act.backward(soft.backward(CrossEntropyModule().backward(probs, y))))
    for arr in (probs, dx, layer.grads["weight"], layer.grads["bias"]):
        assert arr.dtype == np.float32
    reference = LinearModule(5, 4)  # the same layer in float64
    reference.params["weight"] = layer.params["weight"].astype(np.float64)
    np.testing.assert_allclose(layer.forward(x), reference.forward(x.astype(np.float64)), rtol=1e-5)


def test_fused_loss_keeps_float32():
    logits = np.random.default_rng(11).standard_normal((4, 3)).astype(np.float32)
    loss, dlogits = softmax_cross_entropy(logits, np.array([0, 1, 2, 0]))
    assert dlogits.dtype == np.float32
    assert loss == pytest.approx(
        softmax_cross_entropy(logits.astype(np.float64), np.array([0, 1, 2, 0]))[0], rel=1e-5
    )


# --- clear errors for bad input ---------------------------------------------------------------


def test_linear_rejects_wrong_shapes():
    layer = LinearModule(4, 2)
    with pytest.raises(
        ValueError, match=r"LinearModule expects x of shape \(batch, 4\), got \(3, 5\)"
    ):
        layer.forward(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"expects x of shape \(batch, 4\), got \(4,\)"):
        layer.forward(np.zeros(4))
    layer.forward(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"LinearModule.backward expects dout of shape \(3, 2\)"):
        layer.backward(np.zeros((2, 3)))


def test_activations_reject_wrong_dout():
    act, soft = LeakyReLUModule(0.1), SoftMaxModule()
    act.forward(np.ones((3, 4)))
    soft.forward(np.ones((3, 4)))
    with pytest.raises(
        ValueError, match=r"LeakyReLUModule.backward expects dout of shape \(3, 4\)"
    ):
        act.backward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"SoftMaxModule.backward expects dout of shape \(3, 4\)"):
        soft.backward(np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"SoftMaxModule expects x of shape \(batch, classes\)"):
        soft.forward(np.ones(4))


@pytest.mark.parametrize("neg_slope", [-0.01, -1.0])
def test_leaky_relu_rejects_negative_slope(neg_slope):
    with pytest.raises(ValueError, match=r"neg_slope >= 0"):
        LeakyReLUModule(neg_slope)


@pytest.mark.parametrize(
    "y",
    [
        np.array([[0.5, 0.5], [0.0, 1.0]]),  # soft targets
        np.array([[1.0, 1.0], [0.0, 1.0]]),  # two hot
        np.array([[0.0, 0.0], [0.0, 1.0]]),  # none hot
        np.array([[2.0, -1.0], [0.0, 1.0]]),  # sums to 1, not 0/1
    ],
)
def test_cross_entropy_rejects_targets_that_are_not_one_hot(y):
    x = np.full((2, 2), 0.5)
    for method in (CrossEntropyModule().forward, CrossEntropyModule().backward):
        with pytest.raises(ValueError, match=r"one-hot of shape \(2, 2\)"):
            method(x, y)


def test_cross_entropy_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"expects one-hot y of shape \(2, 3\), got \(2,\)"):
        CrossEntropyModule().forward(np.full((2, 3), 1 / 3), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"expects x of shape \(batch, classes\)"):
        CrossEntropyModule().backward(np.full(3, 1 / 3), np.array([0.0, 1.0, 0.0]))


def test_fused_loss_rejects_bad_labels():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels \(batch,\), got \(3, 4\) and \(3, 4\)"):
        softmax_cross_entropy(logits, np.eye(4)[:3])
    for bad in (np.array([0, 4, 1]), np.array([0, -1, 1])):  # -1 would silently mean class 3
        with pytest.raises(ValueError, match=r"labels in \[0, 4\)"):
            softmax_cross_entropy(logits, bad)
