"""The NumPy MLP end to end: gradients against central differences, and its contract."""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.numpy_nn import (
    MLP,
    SGD,
    CrossEntropyModule,
    numerical_gradient,
    numerical_vjp,
    relative_error,
    softmax_cross_entropy,
)
from tests.reference import TOL, assert_param_grads_match, one_hot

# (batch, n_inputs, n_hidden, n_classes): batch 1, a single class, no hidden layer, two.
SHAPES = [
    (1, 3, [4], 1),
    (1, 5, [3], 4),
    (4, 5, [], 3),
    (3, 4, [5, 3], 2),
    (6, 2, [3], 1),
    (5, 6, [4, 4, 3], 5),
]


def make_mlp(n_inputs, n_hidden, n_classes, seed, **kwargs) -> MLP:
    """An MLP with O(1) weights: the default 1e-4 init would sit every unit on the kink."""
    kwargs.setdefault("neg_slope", 0.1)
    return MLP(
        n_inputs, n_hidden, n_classes, rng=np.random.default_rng(seed), init_std=0.7, **kwargs
    )


def cross_entropy_backward(model: MLP, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """One forward and backward through the seed's modules; returns what MLP.backward gives."""
    ce = CrossEntropyModule()
    probs = model.forward(x)
    return model.backward(ce.backward(probs, y))


def assert_backward_logits_is_the_vjp(model: MLP, rng: np.random.Generator, batch: int) -> None:
    """backward_logits of a random dlogits against central differences of <logits, dlogits>."""
    n_inputs = model.linears[0].params["weight"].shape[1]  # weights are (out, in)
    n_classes = model.linears[-1].params["weight"].shape[0]
    x, dlogits = rng.standard_normal((batch, n_inputs)), rng.standard_normal((batch, n_classes))
    model.forward_logits(x)
    dx = model.backward_logits(dlogits)
    assert_param_grads_match(model, lambda: float(np.sum(model.forward_logits(x) * dlogits)))
    assert relative_error(dx, numerical_vjp(lambda: model.forward_logits(x), x, dlogits)) < TOL


@pytest.mark.parametrize("batch, n_inputs, n_hidden, n_classes", SHAPES)
def test_mlp_gradients_through_cross_entropy(batch, n_inputs, n_hidden, n_classes):
    rng = np.random.default_rng(batch + n_inputs + n_classes)
    model = make_mlp(n_inputs, n_hidden, n_classes, seed=batch, input_grad=True)
    x = rng.standard_normal((batch, n_inputs))
    y = one_hot(rng.integers(0, n_classes, batch), n_classes)
    ce = CrossEntropyModule()
    dx = cross_entropy_backward(model, x, y)
    assert_param_grads_match(model, lambda: ce.forward(model.forward(x), y))
    assert relative_error(dx, numerical_gradient(lambda: ce.forward(model.forward(x), y), x)) < TOL


@pytest.mark.parametrize("batch, n_inputs, n_hidden, n_classes", SHAPES)
def test_mlp_backward_logits_is_the_vjp_of_forward_logits(batch, n_inputs, n_hidden, n_classes):
    # A random dout makes the single-class case non-trivial (softmax of one class is constant).
    rng = np.random.default_rng(10 + batch + n_inputs)
    model = make_mlp(n_inputs, n_hidden, n_classes, seed=batch + 1, input_grad=True)
    assert_backward_logits_is_the_vjp(model, rng, batch)


@pytest.mark.parametrize("seed", range(6))
def test_mlp_gradients_for_random_shapes(seed):
    rng = np.random.default_rng(100 + seed)
    batch, n_inputs, n_classes = (int(v) for v in rng.integers(1, 6, size=3))
    n_hidden = [int(h) for h in rng.integers(1, 6, size=rng.integers(0, 3))]
    model = make_mlp(n_inputs, n_hidden, n_classes, seed=seed, input_grad=True)
    assert_backward_logits_is_the_vjp(model, rng, batch)


@pytest.mark.parametrize("batch, n_inputs, n_hidden, n_classes", SHAPES[1:4])
def test_mlp_fused_loss_path_matches_the_module_path(batch, n_inputs, n_hidden, n_classes):
    rng = np.random.default_rng(20 + batch)
    model = make_mlp(n_inputs, n_hidden, n_classes, seed=3)
    x, labels = rng.standard_normal((batch, n_inputs)), rng.integers(0, n_classes, batch)
    cross_entropy_backward(model, x, one_hot(labels, n_classes))
    via_modules = [{k: g.copy() for k, g in grads.items()} for _, grads in model.parameters()]
    _, dlogits = softmax_cross_entropy(model.forward_logits(x), labels)
    model.backward_logits(dlogits)
    for expected, (_, grads) in zip(via_modules, model.parameters(), strict=True):
        for key in grads:
            np.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-14)


def test_input_grad_is_none_unless_asked():
    model = make_mlp(4, [3], 2, seed=0)
    x, y = np.ones((2, 4)), np.eye(2)
    assert cross_entropy_backward(model, x, y) is None  # the first layer's dx matmul is skipped
    assert cross_entropy_backward(make_mlp(4, [3], 2, seed=0, input_grad=True), x, y).shape == (
        2,
        4,
    )


def test_forward_reads_parameters_on_every_call():
    model = make_mlp(3, [4], 2, seed=1)
    x = np.random.default_rng(1).standard_normal((5, 3))
    before = model.forward(x).copy()
    model.linears[-1].params["bias"][0] += 1.0  # in place: +1 on class 0's logit
    after = model.forward(x)
    odds = (after[:, 0] / after[:, 1]) / (before[:, 0] / before[:, 1])
    np.testing.assert_allclose(odds, np.e)


def test_backward_overwrites_grads():
    model = make_mlp(3, [4], 2, seed=2)
    rng = np.random.default_rng(2)
    x1, x2 = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    y = one_hot(np.array([0, 1, 0, 1, 1]), 2)
    cross_entropy_backward(model, x2, y)
    expected = [grads["weight"].copy() for _, grads in model.parameters()]
    cross_entropy_backward(model, x1, y)
    cross_entropy_backward(model, x2, y)  # x1's gradients must not linger
    for want, (_, grads) in zip(expected, model.parameters(), strict=True):
        np.testing.assert_allclose(grads["weight"], want, rtol=1e-12)


def test_empty_hidden_is_a_linear_classifier():
    model = make_mlp(4, [], 3, seed=3)
    assert len(model.linears) == 1 and not model.activations
    x = np.random.default_rng(3).standard_normal((2, 4))
    layer = model.linears[0].params
    logits = x @ layer["weight"].T + layer["bias"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-12)


def test_layer_sizes_follow_the_seed():
    model = MLP(3072, [100, 50], 10, neg_slope=0.02, rng=np.random.default_rng(0))
    shapes = [params["weight"].shape for params, _ in model.parameters()]
    assert shapes == [(100, 3072), (50, 100), (10, 50)]
    assert all(a.neg_slope == 0.02 for a in model.activations)
    assert model.linears[0].params["weight"].dtype == np.float64


def test_float32_model_stays_float32_and_agrees_with_float64():
    rng = np.random.default_rng(4)
    x, labels = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    m64, m32 = make_mlp(6, [5], 3, seed=4), make_mlp(6, [5], 3, seed=4, dtype=np.float32)
    for model, xs in ((m64, x), (m32, x.astype(np.float32))):
        _, dlogits = softmax_cross_entropy(model.forward_logits(xs), labels)
        model.backward_logits(dlogits)
    for (p32, g32), (_, g64) in zip(m32.parameters(), m64.parameters(), strict=True):
        assert p32["weight"].dtype == g32["weight"].dtype == g32["bias"].dtype == np.float32
        np.testing.assert_allclose(g32["weight"], g64["weight"], rtol=1e-3, atol=1e-5)


def test_sgd_training_lowers_the_loss():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 60)
    x = rng.standard_normal((60, 8)) + 2 * np.eye(3, 8)[labels]  # class-dependent means
    model = MLP(8, [16], 3, neg_slope=0.02, rng=rng, init_std=0.1)
    optimizer = SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(50):
        loss, dlogits = softmax_cross_entropy(model.forward_logits(x), labels)
        model.backward_logits(dlogits)
        optimizer.step()
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]


def test_bad_input_gets_a_clear_error():
    model = make_mlp(4, [3], 2, seed=6)
    with pytest.raises(ValueError, match=r"expects x of shape \(batch, 4\), got \(2, 5\)"):
        model.forward(np.zeros((2, 5)))
    model.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"expects dout of shape \(2, 2\), got \(2, 3\)"):
        model.backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"expects dout of shape \(2, 2\), got \(3, 2\)"):
        model.backward_logits(np.zeros((3, 2)))
    for n_hidden in ([3], []):  # a linear classifier has no LeakyReLU, yet must still refuse
        with pytest.raises(ValueError, match=r"neg_slope >= 0"):
            MLP(4, n_hidden, 2, neg_slope=-0.1)
    with pytest.raises(ValueError, match=r"hidden sizes must be positive"):
        MLP(4, [3, 0], 2, neg_slope=0.1)
