"""The course's gradient_check.py (CS231n's): its names over dlexp.numpy_nn's finite differences."""

from __future__ import annotations

import numpy as np

from dlexp.numpy_nn import numerical_gradient, numerical_vjp


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """d f(x) / d x for a scalar-valued f, by central differences; x is perturbed in place."""
    grad = numerical_gradient(lambda: f(x), x, h)
    if verbose:  # the course printed each index and its gradient
        for ix in np.ndindex(x.shape):
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """sum(f(x) * df) differentiated w.r.t. x: what a backward pass returns for upstream df."""
    return numerical_vjp(lambda: f(x), x, df, h)


__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array"]
