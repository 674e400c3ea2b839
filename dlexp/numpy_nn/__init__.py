"""The pure-NumPy neural-network library (never imports torch)."""

from dlexp.numpy_nn.gradcheck import numerical_gradient, numerical_vjp, relative_error
from dlexp.numpy_nn.mlp import MLP
from dlexp.numpy_nn.modules import (
    CrossEntropyModule,
    LeakyReLUModule,
    LinearModule,
    SoftMaxModule,
    softmax,
    softmax_cross_entropy,
)
from dlexp.numpy_nn.optim import OPTIMIZERS, SGD, Adam, AdamW
from dlexp.numpy_nn.schedules import (
    SCHEDULE_CLASSES,
    SCHEDULES,
    check_schedule_args,
    make_numpy_scheduler,
)

# Short aliases; the seed's names above stay the contract.
Linear, LeakyReLU, SoftMax, CrossEntropy = (
    LinearModule, LeakyReLUModule, SoftMaxModule, CrossEntropyModule,
)  # fmt: skip

__all__ = [
    "MLP",
    "OPTIMIZERS",
    "SCHEDULES",
    "SCHEDULE_CLASSES",
    "SGD",
    "Adam",
    "AdamW",
    "CrossEntropy",
    "CrossEntropyModule",
    "LeakyReLU",
    "LeakyReLUModule",
    "Linear",
    "LinearModule",
    "SoftMax",
    "SoftMaxModule",
    "check_schedule_args",
    "make_numpy_scheduler",
    "numerical_gradient",
    "numerical_vjp",
    "relative_error",
    "softmax",
    "softmax_cross_entropy",
]
