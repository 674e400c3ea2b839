"""dlexp: config-driven deep-learning experiments on CIFAR-10.

The Python API (docs/python_api.md): `compose`, `train`, `load_run` and `Run`. Each is imported
when first used (PEP 562), so that importing a library (dlexp.numpy_nn, dlexp.data, ...) loads no
Hydra, OmegaConf or torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_API = {
    "compose": "dlexp.api",
    "train": "dlexp.training",
    "load_run": "dlexp.api",
    "Run": "dlexp.api",
}
__all__ = ["Run", "__version__", "compose", "load_run", "train"]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports them
    from dlexp.api import Run, compose, load_run
    from dlexp.training import train


def __getattr__(name: str):
    """The API's names, imported from their modules on first use."""
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'dlexp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
