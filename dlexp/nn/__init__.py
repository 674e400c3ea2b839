"""Torch building blocks: the custom batch norms and the norm factory."""

from dlexp.nn.batchnorm import (
    AutogradBatchNorm,
    BatchNormFunction,
    CustomBatchNormAutograd,
    CustomBatchNormManualFunction,
    CustomBatchNormManualModule,
    ManualBatchNorm,
)
from dlexp.nn.norm import NORMS, make_norm, norm_factory

__all__ = [
    "NORMS",
    "AutogradBatchNorm",
    "BatchNormFunction",
    "CustomBatchNormAutograd",
    "CustomBatchNormManualFunction",
    "CustomBatchNormManualModule",
    "ManualBatchNorm",
    "make_norm",
    "norm_factory",
]
