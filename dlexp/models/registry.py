"""A model registry in the manner of timm: register_model / create_model / list_models.

Built-in models live in their own modules and are imported on first use, so the NumPy path
never pays for `import torch`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from dlexp.errors import ConfigError

BACKENDS = ("numpy", "torch")
_BUILTIN_MODULES = {
    "numpy_mlp": "dlexp.models.numpy_mlp",
    "torch_mlp": "dlexp.models.torch_mlp",
    "convnet": "dlexp.models.convnet",
}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    backend: str  # which training backend drives it: "numpy" or "torch"
    factory: Callable


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, backend: str) -> Callable[[Callable], Callable]:
    """Decorator that registers a model factory under `name`; duplicates are refused."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")

    def decorate(factory: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, backend, factory)
        return factory

    return decorate


def list_models() -> list[str]:
    """Every registered model name, built-ins included, sorted."""
    for module in _BUILTIN_MODULES.values():
        importlib.import_module(module)
    return sorted(_REGISTRY)


def get_model_entry(name: str) -> ModelEntry:
    """The entry for `name`, importing its built-in module if needed."""
    if name not in _REGISTRY and name in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[name])
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(name: str, **kwargs):
    """Build the model registered as `name` with the factory's keyword arguments."""
    return get_model_entry(name).factory(**kwargs)
