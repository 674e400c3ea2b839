"""A tiny model package for the data-parallel tests: its model fails on rank 1 (torchrun's RANK)
at a given training step, as a bug or a bad GPU on one rank would. dlexp has no hook for it:
the run names it as any model, `model=custom model.name=tests.failing_rank:fails_on_rank_1`."""

from __future__ import annotations

import os

from torch import nn


class FailsOnRankOne(nn.Module):
    def __init__(self, at_step: int, n_inputs: int = 3072, n_classes: int = 10):
        super().__init__()
        self.linear = nn.Linear(n_inputs, n_classes)
        self.at_step, self.steps = at_step, 0

    def forward(self, x):
        if self.training:
            self.steps += 1
            if self.steps == self.at_step and os.environ.get("RANK") == "1":
                raise ValueError(f"rank 1 fails at step {self.at_step}")
        return self.linear(x.flatten(1))


def fails_on_rank_1(at_step: int = 50) -> FailsOnRankOne:
    return FailsOnRankOne(at_step)
