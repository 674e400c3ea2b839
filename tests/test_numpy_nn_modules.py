"""dlexp.numpy_nn modules against central differences and torch float64.

Their contract and their errors are in test_numpy_nn_modules_contract.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.functional import cross_entropy, leaky_relu, nll_loss

from dlexp.numpy_nn import (
    CrossEntropyModule,
    LeakyReLUModule,
    LinearModule,
    SoftMaxModule,
    numerical_gradient,
    numerical_vjp,
    relative_error,
    softmax,
    softmax_cross_entropy,
)
from tests.reference import away_from_zero, one_hot, probabilities

TOL = 1e-7  # relative error of an analytic gradient against central differences, float64
# (batch, features): batch 1 and a single feature/class included on purpose.
SHAPES = [(1, 1), (1, 5), (4, 1), (3, 4), (7, 10)]
LINEAR_SHAPES = [(1, 1, 1), (1, 4, 3), (5, 3, 1), (6, 7, 4), (2, 1, 5)]  # (batch, in, out)


# --- central differences, float64 -------------------------------------------------------------


@pytest.mark.parametrize("batch, n_in, n_out", LINEAR_SHAPES)
def test_linear_gradients_match_central_differences(batch, n_in, n_out):
    rng = np.random.default_rng(batch * 100 + n_in * 10 + n_out)
    layer = LinearModule(n_in, n_out, rng=rng, init_std=1.0)
    layer.params["bias"][:] = rng.standard_normal(n_out)
    x, dout = rng.standard_normal((batch, n_in)), rng.standard_normal((batch, n_out))
    layer.forward(x)
    dx = layer.backward(dout)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    assert relative_error(dx, numerical_vjp(lambda: layer.forward(x), x, dout)) < TOL
    for key, param in layer.params.items():
        numeric = numerical_vjp(lambda: layer.forward(x), param, dout)
        assert relative_error(grads[key], numeric) < TOL, key


@pytest.mark.parametrize("neg_slope", [0.0, 0.02, 0.5, 1.5])
@pytest.mark.parametrize("shape", SHAPES)
def test_leaky_relu_gradient_matches_central_differences(shape, neg_slope):
    rng = np.random.default_rng(sum(shape))
    module = LeakyReLUModule(neg_slope)
    x, dout = away_from_zero(rng, shape), rng.standard_normal(shape)
    module.forward(x)
    dx = module.backward(dout)
    assert relative_error(dx, numerical_vjp(lambda: module.forward(x), x, dout)) < TOL


@pytest.mark.parametrize("neg_slope", [0.0, 0.02, 1.5])
def test_leaky_relu_forward_matches_torch_and_takes_slope_at_zero(neg_slope):
    x = np.array([[-3.0, -1e-3, -1e-300, 0.0, 1e-300, 2.0]])
    module = LeakyReLUModule(neg_slope)
    out = module.forward(x)
    expected = leaky_relu(torch.tensor(x), negative_slope=neg_slope).numpy()
    np.testing.assert_array_equal(out, expected)
    dx = module.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, [[neg_slope] * 4 + [1.0, 1.0]])  # f'(0) := a, as documented


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_gradient_matches_central_differences(shape):
    rng = np.random.default_rng(sum(shape) + 1)
    module = SoftMaxModule()
    x, dout = 2 * rng.standard_normal(shape), rng.standard_normal(shape)
    module.forward(x)
    dx = module.backward(dout)
    assert relative_error(dx, numerical_vjp(lambda: module.forward(x), x, dout)) < TOL


@pytest.mark.parametrize("shape", SHAPES)
def test_cross_entropy_gradient_matches_central_differences(shape):
    rng = np.random.default_rng(sum(shape) + 2)
    module = CrossEntropyModule()
    x, y = probabilities(rng, shape), one_hot(rng.integers(0, shape[1], shape[0]), shape[1])
    dx = module.backward(x, y)
    assert relative_error(dx, numerical_gradient(lambda: module.forward(x, y), x)) < TOL


@pytest.mark.parametrize("shape", SHAPES)
def test_fused_softmax_cross_entropy_gradient_matches_central_differences(shape):
    rng = np.random.default_rng(sum(shape) + 3)
    logits, labels = 2 * rng.standard_normal(shape), rng.integers(0, shape[1], shape[0])
    _, dlogits = softmax_cross_entropy(logits, labels)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, labels)[0], logits)
    assert relative_error(dlogits, numeric) < TOL


# --- torch float64 reference ------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_forward_and_backward_match_torch(shape):
    rng = np.random.default_rng(sum(shape) + 4)
    x, dout = 3 * rng.standard_normal(shape), rng.standard_normal(shape)
    module = SoftMaxModule()
    probs = module.forward(x)
    dx = module.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    pt = torch.softmax(xt, dim=1)
    pt.backward(torch.tensor(dout))
    np.testing.assert_allclose(probs, pt.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(softmax(x), probs, rtol=0, atol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_cross_entropy_forward_and_backward_match_torch(shape):
    rng = np.random.default_rng(sum(shape) + 5)
    x, labels = probabilities(rng, shape), rng.integers(0, shape[1], shape[0])
    module, y = CrossEntropyModule(), one_hot(labels, shape[1])
    loss, dx = module.forward(x, y), module.backward(x, y)
    xt = torch.tensor(x, requires_grad=True)
    lt = nll_loss(torch.log(xt), torch.tensor(labels))  # batch mean, as the seed's L_total
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", SHAPES)
def test_fused_softmax_cross_entropy_matches_torch(shape):
    rng = np.random.default_rng(sum(shape) + 6)
    logits, labels = 3 * rng.standard_normal(shape), rng.integers(0, shape[1], shape[0])
    loss, dlogits = softmax_cross_entropy(logits, labels)
    lt_in = torch.tensor(logits, requires_grad=True)
    lt = cross_entropy(lt_in, torch.tensor(labels))
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(dlogits, lt_in.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_fused_equals_softmax_then_cross_entropy():
    rng = np.random.default_rng(7)
    logits, labels = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    probs, y = softmax(logits), one_hot(labels, 4)
    softmax_module, ce = SoftMaxModule(), CrossEntropyModule()
    softmax_module.forward(logits)
    chained = softmax_module.backward(ce.backward(probs, y))
    loss, fused = softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(ce.forward(probs, y), rel=1e-12)
    np.testing.assert_allclose(fused, chained, rtol=1e-10, atol=1e-15)


# --- zero probabilities and extreme logits ----------------------------------------------------


def test_cross_entropy_is_finite_when_a_probability_is_zero():
    x = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    y = one_hot(np.array([0, 1, 0]), 2)  # the first row puts all mass on the wrong class
    module = CrossEntropyModule()
    loss, dx = module.forward(x, y), module.backward(x, y)
    assert np.isfinite(loss) and loss > 5  # -log(0) is clipped, still a large loss
    assert np.all(np.isfinite(dx))
    assert dx[0, 0] < 0 and dx[0, 1] == 0  # pushes the true class up, leaves the other


def test_softmax_and_fused_loss_are_finite_for_extreme_logits():
    logits = np.array([[1000.0, -1000.0, 0.0], [-1e4, -1e4, -1e4]])
    probs = SoftMaxModule().forward(logits)
    assert np.all(np.isfinite(probs)) and probs[0, 1] == 0.0
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    loss, dlogits = softmax_cross_entropy(logits, np.array([1, 2]))
    assert np.isfinite(loss) and loss == pytest.approx((2000.0 + np.log(3)) / 2)
    assert np.all(np.isfinite(dlogits))
    softmax_module = SoftMaxModule()
    softmax_module.forward(logits)
    dx = softmax_module.backward(CrossEntropyModule().backward(probs, one_hot(np.array([1, 2]), 3)))
    assert np.all(np.isfinite(dx))
