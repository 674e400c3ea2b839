"""The course's custom_batchnorm.py: the seed §3 batch norms from dlexp.nn."""

from dlexp.nn import (
    CustomBatchNormAutograd,
    CustomBatchNormManualFunction,
    CustomBatchNormManualModule,
)

__all__ = [
    "CustomBatchNormAutograd",
    "CustomBatchNormManualFunction",
    "CustomBatchNormManualModule",
]
