"""docs/backprop.md §3.2a: the batch-norm backward formulas against central differences.

As in test_docs_backprop.py, the formulas are typed in from the page, not taken from the library.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlexp.numpy_nn import numerical_vjp, relative_error

TOL = 1e-7  # relative error against central differences, float64

EPS = 1e-5
# m >= 3 values per channel: with m = 2, x̂ = ±1 exactly and dx is only O(ε), all rounding noise.
BN_SHAPES = [(5, 3), (3, 1), (4, 3, 2, 3), (2, 2, 1, 2)]


def channel_sum(a: np.ndarray) -> np.ndarray:
    """Σ_s over the batch (and spatial) axes, kept broadcastable against x."""
    return a.sum(axis=(0, 2, 3) if a.ndim == 4 else 0, keepdims=True)


def batch_norm(x, gamma, beta, stats=None) -> np.ndarray:
    """y = γ x̂ + β; batch statistics, or fixed (μ, σ²) for eval mode."""
    m = x.size // x.shape[1]
    if stats is None:
        mu = channel_sum(x) / m
        stats = (mu, channel_sum((x - mu) ** 2) / m)  # the biased variance
    mu, var = stats
    return gamma * (x - mu) / np.sqrt(var + EPS) + beta


def bn_inputs(shape, seed: int):
    """x, γ, β (broadcastable per channel) and an upstream gradient g."""
    rng = np.random.default_rng(seed)
    per_channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    x = 2 * rng.standard_normal(shape) + 0.5
    gamma, beta = rng.uniform(0.5, 2.0, per_channel), rng.standard_normal(per_channel)
    return x, gamma, beta, rng.standard_normal(shape)


def bn_formula(x, gamma, g):
    """## 3.2a: dγ, dβ and dx, exactly as the page writes them (training mode)."""
    m = x.size // x.shape[1]
    mu = channel_sum(x) / m
    var = channel_sum((x - mu) ** 2) / m
    x_hat = (x - mu) / np.sqrt(var + EPS)
    dgamma, dbeta = channel_sum(g * x_hat), channel_sum(g)
    dx = gamma / np.sqrt(var + EPS) * (g - (dbeta + x_hat * dgamma) / m)
    return dx, dgamma, dbeta


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_3_2a_batch_norm_gradients(shape):
    """## 3.2a: dγ = Σ g x̂, dβ = Σ g, dx = γ/√(σ²+ε) (g - (dβ + x̂ dγ)/m), m = N·H·W."""
    x, gamma, beta, g = bn_inputs(shape, seed=len(shape) + shape[0])
    dx, dgamma, dbeta = bn_formula(x, gamma, g)

    def forward():
        return batch_norm(x, gamma, beta)

    for formula, wrt in ((dx, x), (dgamma, gamma), (dbeta, beta)):
        assert relative_error(formula, numerical_vjp(forward, wrt, g)) < TOL


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_3_2a_batch_norm_eval_mode_gradient(shape):
    """## 3.2a, eval mode: dx = γ / √(σ²_run + ε) g."""
    x, gamma, beta, g = bn_inputs(shape, seed=11)
    stats = (beta * 0.3, gamma * 0.7)  # any fixed running statistics, broadcastable
    formula = gamma / np.sqrt(stats[1] + EPS) * g
    assert (
        relative_error(formula, numerical_vjp(lambda: batch_norm(x, gamma, beta, stats), x, g))
        < TOL
    )


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_3_2a_named_code_computes_the_formula(shape):
    """dlexp.nn.batchnorm.BatchNormFunction.backward, the code the page names, agrees with it."""
    from dlexp.nn.batchnorm import BatchNormFunction

    x, gamma, beta, g = bn_inputs(shape, seed=13)
    tensors = [
        torch.tensor(a, requires_grad=True) for a in (x, gamma.reshape(-1), beta.reshape(-1))
    ]
    BatchNormFunction.apply(tensors[0], tensors[1], tensors[2], EPS).backward(torch.tensor(g))
    for want, got in zip(bn_formula(x, gamma, g), tensors, strict=True):
        np.testing.assert_allclose(
            got.grad.numpy(), want.reshape(got.shape), rtol=1e-10, atol=1e-12
        )
