"""The state both backends save alike: model, optimizer and schedule (each its own state_dict),
and the training statistics gathered since the loop last logged them."""

from __future__ import annotations


def training_state(model, optimizer, scheduler, loss_sum, correct, seen: int) -> dict:
    """`loss_sum` and `correct` over the `seen` training images not yet logged (a number, or a
    torch tensor the backend keeps on its device)."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "train_stats": {"loss_sum": loss_sum, "correct": correct, "seen": seen},
    }


def load_training_state(state: dict, model, optimizer, scheduler) -> None:
    """Restore training_state(); the schedule last, as it sets the optimizer's lr."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if (state["scheduler"] is None) != (scheduler is None):
        raise ValueError("the checkpoint and this run disagree on having a schedule")
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
