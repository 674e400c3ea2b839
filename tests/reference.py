"""Plain NumPy inputs and targets shared by the tests of dlexp.numpy_nn and docs/backprop.md.

The one-hot targets are float64 here, as the float64 references need them; dlexp.data.one_hot
is float32 by default.
"""

from __future__ import annotations

import numpy as np

from dlexp.numpy_nn import numerical_gradient, relative_error

TOL = 1e-7  # relative error of an analytic gradient against central differences, float64


def one_hot(labels: np.ndarray, n_classes: int, dtype=np.float64) -> np.ndarray:
    return np.eye(n_classes, dtype=dtype)[labels]


def away_from_zero(rng: np.random.Generator, shape) -> np.ndarray:
    """Values with |v| in [0.1, 2]: central differences never straddle LeakyReLU's kink."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


def probabilities(rng: np.random.Generator, shape) -> np.ndarray:
    """Row-normalised probabilities bounded away from 0, where -log x is smooth enough."""
    x = rng.uniform(0.2, 1.0, size=shape)
    return x / x.sum(axis=1, keepdims=True)


def assert_param_grads_match(model, loss) -> None:
    """Each Linear's stored grads against central differences of the scalar `loss()`."""
    analytic = [{k: g.copy() for k, g in grads.items()} for _, grads in model.parameters()]
    for layer, (params, _) in enumerate(model.parameters()):
        for key, param in params.items():
            numeric = numerical_gradient(loss, param)
            assert relative_error(analytic[layer][key], numeric) < TOL, (layer, key)
