"""A model registry in the manner of timm: register_model / create_model / list_models.

Built-in models live in their own modules and are imported on first use, so the NumPy path
never pays for `import torch`. A user's own package adds models without touching dlexp, either
by an entry point in the `dlexp.models` group or by naming the factory as `module:factory`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from dlexp.errors import ConfigError

BACKENDS = ("numpy", "torch")
ENTRY_POINT_GROUP = "dlexp.models"  # [project.entry-points."dlexp.models"] name = "pkg.mod:factory"
BUILTIN_MODELS = {  # name: its module
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
        factory.dlexp_backend = backend  # read when the factory is reached by another name
        return factory

    return decorate


def _plugin_names() -> list[str]:
    return [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)]


def _load_factory(name: str) -> Callable | None:
    """The factory behind an entry point or a `module:factory` name; None when neither."""
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        if not module_name or not attribute:
            raise ConfigError(f"model {name!r}: write module:factory, as my_pkg.models:resnet18")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ConfigError(f"model {name!r}: cannot import {module_name}: {err}") from None
        factory = getattr(module, attribute, None)
        if not callable(factory):
            raise ConfigError(f"model {name!r}: {module_name} has no callable {attribute!r}")
        return factory
    for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            return point.load()
        except (ImportError, AttributeError) as err:  # an entry point naming nothing loadable
            message = f"{type(err).__name__}: {err}".splitlines()[0]
            raise ConfigError(f"model {name!r} (entry point {point.value}): {message}") from err
    return None


def list_models() -> list[str]:
    """Every model name: built-ins and those registered by installed packages, sorted."""
    for module in BUILTIN_MODELS.values():
        importlib.import_module(module)
    return sorted(set(_REGISTRY) | set(_plugin_names()))


def get_model_entry(name: str) -> ModelEntry:
    """The entry for `name`: a built-in, a registered or entry-point model, or `module:factory`."""
    if name not in _REGISTRY and name in BUILTIN_MODELS:
        importlib.import_module(BUILTIN_MODELS[name])
    if name not in _REGISTRY:
        factory = _load_factory(name)
        if factory is None:
            known = ", ".join(list_models())
            raise ConfigError(
                f"unknown model {name!r}; known models: {known}, or a module:factory name"
            )
        backend = getattr(factory, "dlexp_backend", "torch")  # plain factories build nn.Modules
        if ":" in name:  # module:factory names are not listed among the known models
            return ModelEntry(name, backend, factory)
        _REGISTRY[name] = ModelEntry(name, backend, factory)
    return _REGISTRY[name]


def create_model(name: str, **kwargs):
    """Build the model registered as `name` with the factory's keyword arguments."""
    return get_model_entry(name).factory(**kwargs)
