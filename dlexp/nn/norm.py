"""The `norm` group's names mapped to layers, for 1-D (N, C) and 2-D (N, C, H, W) use."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import partial

from torch import nn

from dlexp.errors import ConfigError
from dlexp.nn.batchnorm import AutogradBatchNorm, ManualBatchNorm
from dlexp.nn.norm_spec import NORMS, norm_arguments

NormFactory = Callable[[int, int], nn.Module]  # (num_features, spatial dims 1 or 2) -> layer


def make_norm(name: str, num_features: int, dim: int, **arguments: float):
    """A norm layer by name; `dim` is 1 for (N, C) inputs, 2 for (N, C, H, W); `arguments` are
    the norm group's keys (dlexp.nn.norm_spec.norm_arguments: eps, momentum, sync).

    With sync, torch_bn is nn.SyncBatchNorm, which trains on CUDA only (dlexp's run refuses
    it on the CPU); the custom norms all-reduce their statistics on any device.
    """
    if dim not in (1, 2):
        raise ValueError(f"norm dim must be 1 or 2, got {dim}")
    eps, momentum, sync = norm_arguments(**arguments).values()
    if name == "none":
        return nn.Identity()
    if name == "torch_bn":
        layer = nn.SyncBatchNorm if sync else nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
        return layer(num_features, eps=eps, momentum=momentum)
    if name == "autograd_bn":
        return AutogradBatchNorm(num_features, eps=eps, momentum=momentum, sync=sync)
    if name == "custom_bn":
        return ManualBatchNorm(num_features, eps=eps, momentum=momentum, sync=sync)
    raise ConfigError(f"unknown norm {name!r}; known norms: {', '.join(NORMS)}")


def norm_factory(norm: str | Mapping | NormFactory | None, **arguments: float) -> NormFactory:
    """A (num_features, dim) -> layer callable from a norm name, None, or the norm group's keys
    ({"name": ..., "eps": ..., "momentum": ..., "sync": ...}); `arguments` as make_norm's."""
    if callable(norm):
        return norm
    if isinstance(norm, Mapping):
        keys = {k: v for k, v in norm.items() if k != "name"}
        known = inspect.signature(norm_arguments).parameters
        unknown = sorted(set(keys) - set(known))
        if unknown:
            takes = ", ".join(["name", *known])
            raise ConfigError(f"norm has no key(s) {', '.join(unknown)}; it takes {takes}")
        return norm_factory(norm.get("name"), **{**arguments, **keys})
    name = "none" if norm is None else norm
    if name not in NORMS:
        raise ConfigError(f"unknown norm {name!r}; known norms: {', '.join(NORMS)}")
    return partial(make_norm, name, **norm_arguments(**arguments))
