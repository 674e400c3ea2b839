"""The loop's two backends, NumPy and torch, each a module with the same build steps.

Each module has `OPTIMIZERS` ({optim.name: class}), `make_scheduler(optimizer, name,
total_steps, **sched keys)`, `prepare_device(device, precision, seed, deterministic)` and
`Backend(model, optimizer, scheduler, data, options)`, the object `dlexp.loop.fit` drives, with
the BackendOptions below. `dlexp.build` uses them in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlexp.data.augment import AUGMENT_MODES
from dlexp.errors import ConfigError, closest


@dataclass(frozen=True)
class BackendOptions:
    """How a backend trains and evaluates, from the run's config; the NumPy backend reads only
    what it supports (dlexp.config.checks refuses the rest for NumPy models)."""

    batch_size: int  # images per training step
    eval_batch_size: int  # images per forward pass during evaluation
    augment: str = "none"  # none | flip | flip_crop: training batches only
    augment_rng: np.random.Generator | None = None  # needed when augment is not none
    device: Any = "cpu"  # a torch.device for torch models
    precision: str = "fp32"  # torch: fp32 | bf16 (autocast)
    label_smoothing: float = 0.0  # torch: the training loss's smoothing
    compile: bool = False  # torch: torch.compile the train step
    channels_last: bool = False  # torch: NHWC memory for the ConvNet
    ranks: Any = None  # torch: a data-parallel run's Ranks (dlexp.distributed.process_group)

    def __post_init__(self):
        """The ranges of the keys only the backends read (LoopSchedule checks the batch sizes)."""
        if self.augment not in AUGMENT_MODES:
            raise ConfigError(
                f"data.augment must be one of {', '.join(AUGMENT_MODES)}, got {self.augment!r}"
                f"{closest(self.augment, AUGMENT_MODES)}"
            )
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
