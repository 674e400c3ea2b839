"""The formulas of docs/backprop.md §1.1, coded as written there, against central differences.

The formulas are typed in here from the page, not taken from the library, so a wrong formula
fails even if the code shares the mistake. Each test names the section it checks; the headings
are asserted to exist so that the page and the tests move together. §3.2a, batch norm, is
checked in test_docs_backprop_batchnorm.py.
"""

from __future__ import annotations

import importlib
import re
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

import dlexp.numpy_nn as numpy_nn
from dlexp.numpy_nn import numerical_gradient, numerical_vjp, relative_error
from dlexp.numpy_nn.modules import PROB_FLOOR
from tests.reference import away_from_zero, one_hot

DOC = Path(__file__).resolve().parents[1] / "docs" / "backprop.md"
TOL = 1e-7  # relative error against central differences, float64
SECTIONS = [
    "## 1.1a Module Jacobians",
    "### Cross-entropy",
    "### Softmax",
    "### LeakyReLU",
    "### Linear",
    "## 1.1b Chained backprop equations",
    "## 1.1c A batch of B samples",
    "### Fused softmax + cross-entropy",
    "## 3.2a Batch normalisation",
]
# The code each section names; all must be named on the page and must exist.
NAMED_CODE = {
    "CrossEntropyModule.backward",
    "SoftMaxModule.backward",
    "LeakyReLUModule.backward",
    "LinearModule.forward",
    "LeakyReLUModule.forward",
    "LinearModule.backward",
    "MLP.backward",
    "MLP.backward_logits",
    "softmax_cross_entropy",
    "dlexp.nn.batchnorm.BatchNormFunction.backward",
}


# --- the forward maps of the page's "Conventions", in plain NumPy -----------------------------


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """p_i = exp(z_i) / sum_k exp(z_k) along the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def leaky(z: np.ndarray, a: float) -> np.ndarray:
    """f(z) = max(0, z) + a min(0, z)."""
    return np.maximum(0, z) + a * np.minimum(0, z)


def leaky_slope(z: np.ndarray, a: float) -> np.ndarray:
    """f'(z): 1 for z > 0, a for z <= 0."""
    return np.where(z > 0, 1.0, a)


def jacobian(f, x: np.ndarray) -> np.ndarray:
    """J[i, ...] = d f()_i / d x by central differences; f reads x, perturbed in place."""
    n_out = f().size
    return np.stack([numerical_gradient(lambda i=i: f().reshape(-1)[i], x) for i in range(n_out)])


# --- the page itself --------------------------------------------------------------------------


def test_doc_has_the_sections_tested_here():
    headings = {line.strip() for line in DOC.read_text().splitlines() if line.startswith("#")}
    assert set(SECTIONS) <= headings, set(SECTIONS) - headings


def resolve(name: str):
    """The object a dotted name on the page refers to, from dlexp.numpy_nn or a dlexp path."""
    if not name.startswith("dlexp."):
        obj = numpy_nn
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(name)


def test_doc_names_code_that_exists():
    named = set(re.findall(r"`([A-Za-z_][\w.]*)`", DOC.read_text()))
    assert named >= NAMED_CODE, NAMED_CODE - named
    code_like = {n for n in named if n.startswith("dlexp.") or re.match(r"[A-Z]\w*\.\w+$", n)}
    for name in code_like | NAMED_CODE:
        assert callable(resolve(name)), name


def test_doc_states_the_probability_floor():
    assert "`PROB_FLOOR` $= 10^{-12}$" in DOC.read_text() and PROB_FLOOR == 1e-12


# --- 1.1a Module Jacobians --------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [1, 2, 5])
def test_1_1a_cross_entropy_gradient(n_classes):
    """### Cross-entropy: dL/dx = -t / x."""
    rng = np.random.default_rng(n_classes)
    x, t = rng.uniform(0.2, 1.0, n_classes), one_hot(rng.integers(n_classes), n_classes)
    formula = -t / x
    assert relative_error(formula, numerical_gradient(lambda: -np.sum(t * np.log(x)), x)) < TOL


@pytest.mark.parametrize("n_classes", [1, 2, 6])
def test_1_1a_softmax_jacobian(n_classes):
    """### Softmax: dp/dx~ = diag(p) - p p^T."""
    x_tilde = np.random.default_rng(n_classes).standard_normal(n_classes)
    p = softmax_rows(x_tilde)
    formula = np.diag(p) - np.outer(p, p)
    assert relative_error(formula, jacobian(lambda: softmax_rows(x_tilde), x_tilde)) < TOL


@pytest.mark.parametrize("a", [0.0, 0.02, 0.3])
def test_1_1a_leaky_relu_jacobian(a):
    """### LeakyReLU: dx/dx~ = diag(f'(x~))."""
    x_tilde = away_from_zero(np.random.default_rng(3), 7)
    formula = np.diag(leaky_slope(x_tilde, a))
    assert relative_error(formula, jacobian(lambda: leaky(x_tilde, a), x_tilde)) < TOL


@pytest.mark.parametrize("a", [0.0, 0.02, 1.0, 1.5])
def test_1_1a_leaky_relu_forms(a):
    """### LeakyReLU: f = max(z, a z) for a <= 1, min(z, a z) for a > 1; f' = a + (1 - a)[z > 0]."""
    z = np.concatenate([np.random.default_rng(4).standard_normal(50), [0.0]])
    one_ufunc = np.maximum(z, a * z) if a <= 1 else np.minimum(z, a * z)
    np.testing.assert_array_equal(one_ufunc, leaky(z, a))
    np.testing.assert_array_equal(a + (1 - a) * (z > 0), leaky_slope(z, a))


@pytest.mark.parametrize("d_in, d_out", [(1, 1), (4, 3), (2, 5)])
def test_1_1a_linear_jacobians(d_in, d_out):
    """### Linear: dx~/dx = W, (dx~/dW)_ijk = delta_ij x_k, dx~/db = I."""
    rng = np.random.default_rng(d_in * 10 + d_out)
    W, x, b = (
        rng.standard_normal((d_out, d_in)),
        rng.standard_normal(d_in),
        rng.standard_normal(d_out),
    )

    def forward():
        return W @ x + b  # the seed's column form

    assert relative_error(W, jacobian(forward, x)) < TOL
    formula_w = np.einsum("ij,k->ijk", np.eye(d_out), x)
    assert relative_error(formula_w, jacobian(forward, W)) < TOL
    assert relative_error(np.eye(d_out), jacobian(forward, b)) < TOL


# --- 1.1b Chained backprop equations ----------------------------------------------------------


def test_1_1b_one_sample_chain():
    """## 1.1b, one sample: g ⊙ p - (g p) p, g ⊙ f', δ W, δ^T x^T, δ."""
    rng = np.random.default_rng(4)
    x_tilde, g = rng.standard_normal(5), rng.standard_normal(5)
    p = softmax_rows(x_tilde)
    softmax_row = g * p - (g @ p) * p
    assert (
        relative_error(softmax_row, numerical_vjp(lambda: softmax_rows(x_tilde), x_tilde, g)) < TOL
    )
    z, a = away_from_zero(rng, 5), 0.1
    leaky_row = g * leaky_slope(z, a)
    assert relative_error(leaky_row, numerical_vjp(lambda: leaky(z, a), z, g)) < TOL
    W, x, b, delta = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(5), g
    for formula, wrt in ((delta @ W, x), (np.outer(delta, x), W), (delta, b)):
        assert relative_error(formula, numerical_vjp(lambda: W @ x + b, wrt, delta)) < TOL


@pytest.mark.parametrize("batch, d_in, d_out", [(1, 3, 1), (4, 3, 5), (6, 1, 2)])
def test_1_1b_batch_row_table(batch, d_in, d_out):
    """## 1.1b, the table: each row of the batch-row form."""
    rng = np.random.default_rng(batch + d_in + d_out)
    Z, G = rng.standard_normal((batch, d_out)), rng.standard_normal((batch, d_out))
    P, ones_d = softmax_rows(Z), np.ones((d_out, 1))
    softmax_batch = P * (G - (G * P) @ ones_d @ ones_d.T)
    assert relative_error(softmax_batch, numerical_vjp(lambda: softmax_rows(Z), Z, G)) < TOL
    Zk, a = away_from_zero(rng, (batch, d_out)), 0.05
    assert relative_error(G * leaky_slope(Zk, a), numerical_vjp(lambda: leaky(Zk, a), Zk, G)) < TOL
    X, W = rng.standard_normal((batch, d_in)), rng.standard_normal((d_out, d_in))
    b, Delta = rng.standard_normal(d_out), G
    ones_b = np.ones(batch)

    def linear():
        return X @ W.T + np.outer(ones_b, b)  # X~ = X W^T + 1_B b^T

    for formula, wrt in ((Delta @ W, X), (Delta.T @ X, W), (Delta.T @ ones_b, b)):
        assert relative_error(formula, numerical_vjp(linear, wrt, Delta)) < TOL


def mlp_loss(Ws, bs, X, T, a) -> float:
    """L_total of the page's MLP: Linear (+ leaky ReLU) layers, softmax, mean cross-entropy."""
    H = X
    for W, b in zip(Ws[:-1], bs[:-1], strict=True):
        H = leaky(H @ W.T + b, a)
    P = softmax_rows(H @ Ws[-1].T + bs[-1])
    return float(-np.sum(T * np.log(P)) / len(X))


def test_1_1b_whole_mlp_recursion():
    """## 1.1b, the whole MLP: dW = Δ^T X, db = Δ^T 1, Δ_prev = (Δ W) ⊙ f'(X~_prev)."""
    rng = np.random.default_rng(5)
    sizes, batch, a = [4, 5, 3, 3], 6, 0.1
    Ws = [rng.standard_normal((o, i)) for i, o in pairwise(sizes)]
    bs = [rng.standard_normal(o) for o in sizes[1:]]
    X, T = rng.standard_normal((batch, sizes[0])), one_hot(rng.integers(0, 3, batch), 3)
    Xs, Zs = [X], []  # layer inputs X^(l-1) and pre-activations X~^(l), as forward caches them
    for layer, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        Zs.append(Xs[-1] @ W.T + b)
        if layer < len(Ws) - 1:
            Xs.append(leaky(Zs[-1], a))
    P = softmax_rows(Zs[-1])
    G = -T / P / batch  # 1.1c: the loss row with its 1/B
    Delta = P * (G - np.sum(G * P, axis=1, keepdims=True))  # the softmax row of the table
    for layer in reversed(range(len(Ws))):
        dW, db = Delta.T @ Xs[layer], Delta.T @ np.ones(batch)
        assert (
            relative_error(dW, numerical_gradient(lambda: mlp_loss(Ws, bs, X, T, a), Ws[layer]))
            < TOL
        )
        assert (
            relative_error(db, numerical_gradient(lambda: mlp_loss(Ws, bs, X, T, a), bs[layer]))
            < TOL
        )
        if layer:
            Delta = (Delta @ Ws[layer]) * leaky_slope(Zs[layer - 1], a)


# --- 1.1c A batch of B samples ----------------------------------------------------------------


@pytest.mark.parametrize("batch, n_classes", [(1, 1), (1, 3), (5, 4)])
def test_1_1c_batch_loss_gradient(batch, n_classes):
    """## 1.1c, point 1: dL_total/dX^(N) = -(1/B) T ⊘ X^(N)."""
    rng = np.random.default_rng(batch * 10 + n_classes)
    X, T = (
        rng.uniform(0.2, 1.0, (batch, n_classes)),
        one_hot(rng.integers(0, n_classes, batch), n_classes),
    )
    formula = -T / X / batch
    numeric = numerical_gradient(lambda: float(-np.sum(T * np.log(X)) / batch), X)
    assert relative_error(formula, numeric) < TOL


def sample_loss(x, t, W, b) -> float:
    """L^s = -t · log softmax(W x + b) for one sample."""
    return -float(np.log(softmax_rows(W @ x + b)) @ t)


def test_1_1c_parameter_gradient_is_the_sum_over_samples():
    """## 1.1c, point 3: Σ_s δ^s^T x^s^T = Δ^T X, the mean of the per-sample gradients."""
    rng = np.random.default_rng(6)
    batch, d_in, d_out = 5, 3, 4
    X, W, b = (
        rng.standard_normal((batch, d_in)),
        rng.standard_normal((d_out, d_in)),
        rng.standard_normal(d_out),
    )
    T = one_hot(rng.integers(0, d_out, batch), d_out)
    Delta = (softmax_rows(X @ W.T + b) - T) / batch  # already holds the 1/B
    summed = sum(np.outer(Delta[s], X[s]) for s in range(batch))
    np.testing.assert_allclose(summed, Delta.T @ X, rtol=1e-12)
    for formula, wrt in ((Delta.T @ X, W), (Delta.T @ np.ones(batch), b)):
        per_sample = [
            numerical_gradient(lambda s=s: sample_loss(X[s], T[s], W, b), wrt) for s in range(batch)
        ]
        assert relative_error(formula, np.mean(per_sample, axis=0)) < TOL


@pytest.mark.parametrize("batch, n_classes", [(1, 1), (1, 4), (6, 3)])
def test_1_1c_fused_softmax_cross_entropy(batch, n_classes):
    """### Fused softmax + cross-entropy: (P - T)/B, and the log-sum-exp loss."""
    rng = np.random.default_rng(batch + 7 * n_classes)
    Z, y = 2 * rng.standard_normal((batch, n_classes)), rng.integers(0, n_classes, batch)
    T, rows = one_hot(y, n_classes), np.arange(batch)

    def log_sum_exp_loss() -> float:
        m = Z.max(axis=1)
        return float(np.mean(np.log(np.exp(Z - m[:, None]).sum(axis=1)) - (Z[rows, y] - m)))

    naive = -np.sum(T * np.log(softmax_rows(Z))) / batch
    assert log_sum_exp_loss() == pytest.approx(naive, rel=1e-12, abs=1e-15)
    formula = (softmax_rows(Z) - T) / batch
    assert relative_error(formula, numerical_gradient(log_sum_exp_loss, Z)) < TOL
