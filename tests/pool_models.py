"""A torch model for the worker pool's tests: its process kills itself with SIGKILL at a given
training step, once (a marker file remembers), as an out-of-memory kill or `kill -9` would."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from torch import nn


class KilledOnce(nn.Module):
    def __init__(self, marker: str, at_step: int, n_inputs: int = 3072, n_classes: int = 10):
        super().__init__()
        self.linear = nn.Linear(n_inputs, n_classes)
        self.marker, self.at_step, self.steps = Path(marker), at_step, 0

    def forward(self, x):
        if self.training:
            self.steps += 1
            if self.steps == self.at_step and not self.marker.exists():
                self.marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        return self.linear(x.flatten(1))


def killed_once(marker: str, at_step: int) -> KilledOnce:
    return KilledOnce(marker, at_step)


def environment_recorder(folder: str, n_inputs: int = 3072, n_classes: int = 10) -> nn.Module:
    """A linear model that first writes what its process was given, CUDA_VISIBLE_DEVICES and
    OMP_NUM_THREADS, one per line, into `folder`/<its pid>."""
    keys = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")
    Path(folder).mkdir(parents=True, exist_ok=True)
    Path(folder, str(os.getpid())).write_text("\n".join(os.environ.get(k, "") for k in keys))
    return nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, n_classes))
