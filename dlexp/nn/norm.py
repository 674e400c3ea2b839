"""The `norm` group's names mapped to layers, for 1-D (N, C) and 2-D (N, C, H, W) use."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from dlexp.errors import ConfigError
from dlexp.nn.batchnorm import AutogradBatchNorm, ManualBatchNorm
from dlexp.norm_names import NORMS

NormFactory = Callable[[int, int], nn.Module]  # (num_features, spatial dims 1 or 2) -> layer


def make_norm(name: str, num_features: int, dim: int, eps: float = 1e-5, momentum: float = 0.1):
    """A norm layer by name; `dim` is 1 for (N, C) inputs, 2 for (N, C, H, W)."""
    if dim not in (1, 2):
        raise ValueError(f"norm dim must be 1 or 2, got {dim}")
    if name == "none":
        return nn.Identity()
    if name == "torch_bn":
        layer = nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
        return layer(num_features, eps=eps, momentum=momentum)
    if name == "autograd_bn":
        return AutogradBatchNorm(num_features, eps=eps, momentum=momentum)
    if name == "custom_bn":
        return ManualBatchNorm(num_features, eps=eps, momentum=momentum)
    raise ConfigError(f"unknown norm {name!r}; known norms: {', '.join(NORMS)}")


def norm_factory(norm: str | NormFactory | None, eps: float = 1e-5, momentum: float = 0.1):
    """Turn a norm name (or None) into a (num_features, dim) -> layer callable."""
    if callable(norm):
        return norm
    name = "none" if norm is None else norm
    if name not in NORMS:
        raise ConfigError(f"unknown norm {name!r}; known norms: {', '.join(NORMS)}")
    return partial(make_norm, name, eps=eps, momentum=momentum)
