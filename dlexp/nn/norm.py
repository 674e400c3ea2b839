"""The `norm` group's names mapped to layers, for 1-D (N, C) and 2-D (N, C, H, W) use."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from torch import nn

from dlexp.errors import ConfigError
from dlexp.nn.batchnorm import AutogradBatchNorm, ManualBatchNorm

NORMS = ("none", "torch_bn", "autograd_bn", "custom_bn")  # the norm group's options
NormFactory = Callable[[int, int], nn.Module]  # (num_features, spatial dims 1 or 2) -> layer


def make_norm(name: str, num_features: int, dim: int, eps: float = 1e-5, momentum: float = 0.1):
    """A norm layer by name; `dim` is 1 for (N, C) inputs, 2 for (N, C, H, W)."""
    if dim not in (1, 2):
        raise ValueError(f"norm dim must be 1 or 2, got {dim}")
    check_norm_arguments(eps, momentum)
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


def check_norm_arguments(eps: float, momentum: float) -> None:
    """Ranges of the norm group's keys, checked when the model is built, before any data."""
    if not eps > 0:
        raise ConfigError(f"norm.eps must be > 0, got {eps}")
    if not 0 <= momentum <= 1:
        raise ConfigError(f"norm.momentum must be in [0, 1], got {momentum}")


def norm_factory(
    norm: str | Mapping | NormFactory | None, eps: float = 1e-5, momentum: float = 0.1
) -> NormFactory:
    """A (num_features, dim) -> layer callable from a norm name, None, or the norm group's keys
    ({"name": ..., "eps": ..., "momentum": ...})."""
    if callable(norm):
        return norm
    if isinstance(norm, Mapping):
        unknown = sorted(set(norm) - {"name", "eps", "momentum"})
        if unknown:
            raise ConfigError(
                f"norm has no key(s) {', '.join(unknown)}; it takes name, eps, momentum"
            )
        return norm_factory(norm.get("name"), norm.get("eps", eps), norm.get("momentum", momentum))
    name = "none" if norm is None else norm
    if name not in NORMS:
        raise ConfigError(f"unknown norm {name!r}; known norms: {', '.join(NORMS)}")
    check_norm_arguments(eps, momentum)
    return partial(make_norm, name, eps=eps, momentum=momentum)
