"""Torch building blocks: the custom batch norms and the norm factory.

The names load on first use (PEP 562), so that `dlexp.nn.norm_spec`, the norm group's torch-free
schema, can be imported without torch.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "AutogradBatchNorm": "dlexp.nn.batchnorm",
    "BatchNormFunction": "dlexp.nn.batchnorm",
    "CustomBatchNormAutograd": "dlexp.nn.batchnorm",
    "CustomBatchNormManualFunction": "dlexp.nn.batchnorm",
    "CustomBatchNormManualModule": "dlexp.nn.batchnorm",
    "ManualBatchNorm": "dlexp.nn.batchnorm",
    "NORMS": "dlexp.nn.norm_spec",
    "norm_arguments": "dlexp.nn.norm_spec",
    "make_norm": "dlexp.nn.norm",
    "norm_factory": "dlexp.nn.norm",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'dlexp.nn' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
