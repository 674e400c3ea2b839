"""Registers the NumPy MLP (dlexp.numpy_nn.MLP) as `numpy_mlp`."""

from __future__ import annotations

import numpy as np

from dlexp.models.registry import register_model
from dlexp.numpy_nn import MLP


@register_model("numpy_mlp", backend="numpy")
def numpy_mlp(
    n_inputs: int = 3072,
    n_hidden: list[int] = (100,),
    n_classes: int = 10,
    neg_slope: float = 0.02,
    dtype: str = "float32",
    init_std: float = 1e-4,
    rng: np.random.Generator | None = None,
) -> MLP:
    """The seed's NumPy MLP; `dtype` is a NumPy dtype name (float32 trains twice as fast here)."""
    return MLP(
        n_inputs,
        list(n_hidden),
        n_classes,
        neg_slope,
        rng=rng,
        dtype=np.dtype(dtype),
        init_std=init_std,
    )
