"""Central-difference gradients and relative error, for checking hand-written backward passes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """d f / d x by central differences; `f` is re-evaluated after perturbing `x` in place."""
    grad = np.zeros(x.shape, dtype=np.float64)
    # Index x itself (not a reshaped copy) so a non-contiguous x, e.g. W.T, is really perturbed.
    for index in np.ndindex(x.shape):  # finite differences perturb each element by definition
        old = x[index]
        x[index] = old + h
        f_plus = f()
        x[index] = old - h
        f_minus = f()
        x[index] = old
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_vjp(
    f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """sum(dout * d f / d x) by central differences: the vector-Jacobian product of a backward."""
    return numerical_gradient(lambda: float(np.sum(f() * dout)), x, h)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|): 0 for equal arrays, scale-free otherwise."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.max(np.abs(a) + np.abs(b))
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b)) / scale)
