"""torch.optim.lr_scheduler objects for the `sched` config group, checked by the NumPy rules."""

from __future__ import annotations

import torch
from torch.optim import lr_scheduler

from dlexp.numpy_nn.schedules import check_schedule_args


def make_torch_scheduler(
    optimizer: torch.optim.Optimizer, name: str, total_steps: int, **kwargs
) -> lr_scheduler.LRScheduler | None:
    """torch's scheduler for `name`, or None for "none"; step() once after each optimizer.step()."""
    args = check_schedule_args(name, total_steps, **kwargs)
    if name == "none":
        return None
    total_steps = int(total_steps)  # OneCycleLR accepts only a built-in int
    if name == "cosine":
        return _warmup_cosine(optimizer, total_steps, **args)
    if name == "onecycle":
        return lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=total_steps,
            pct_start=args["pct_start"],
            anneal_strategy="cos",
            cycle_momentum=False,  # the lr alone, so any optimizer works
            div_factor=args["div_factor"],
            final_div_factor=args["final_div_factor"],
        )
    return lr_scheduler.StepLR(optimizer, step_size=args["step_size"], gamma=args["gamma"])


def _warmup_cosine(optimizer, total_steps: int, warmup_steps: int, eta_min: float):
    """Linear warmup from lr/(w+1) to lr over w steps, then cosine annealing to eta_min."""
    if warmup_steps == 0:
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=eta_min)
    warmup = lr_scheduler.LinearLR(
        optimizer, start_factor=1 / (warmup_steps + 1), end_factor=1.0, total_iters=warmup_steps
    )
    anneal = lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=total_steps - warmup_steps, eta_min=eta_min
    )
    return lr_scheduler.SequentialLR(optimizer, [warmup, anneal], milestones=[warmup_steps])
