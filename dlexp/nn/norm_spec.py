"""The `norm` group's options and keys, without torch: the config schema reads them before any
torch model is built (dlexp.config.schema), and dlexp.nn.norm builds the layers from them."""

from __future__ import annotations

from dlexp.errors import ConfigError

NORMS = ("none", "torch_bn", "autograd_bn", "custom_bn")  # the norm group's options


def norm_arguments(
    eps: float = 1e-5, momentum: float = 0.1, sync: bool = False
) -> dict[str, float | bool]:
    """The keys every norm option takes, range-checked: the norm group's schema.

    eps: added to the variance before its square root. momentum: running statistics follow
    `running = (1 - momentum) * running + momentum * batch`, as torch's BatchNorm. sync: in
    data-parallel training, the batch statistics are those of the global batch (an all-reduce
    across the ranks), not of each rank's slice; one process is unaffected.
    """
    if not eps > 0:
        raise ConfigError(f"norm.eps must be > 0, got {eps}")
    if not 0 <= momentum <= 1:
        raise ConfigError(f"norm.momentum must be in [0, 1], got {momentum}")
    return {"eps": eps, "momentum": momentum, "sync": bool(sync)}
