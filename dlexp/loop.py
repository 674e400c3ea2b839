"""The one training loop: step, log, evaluate; written once for every backend."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol

from tqdm.auto import tqdm

from dlexp.data.sampler import BatchIndices, BatchSampler
from dlexp.errors import ConfigError, DlexpError


class Backend(Protocol):
    """What the loop needs from a NumPy or torch backend."""

    eval_splits: tuple[str, ...]  # e.g. ("val", "test")

    def train_step(self, batch: BatchIndices) -> None: ...

    def pop_train_stats(self) -> tuple[float, float]:
        """Mean loss and accuracy over the steps since the last call (one host sync)."""

    def evaluate(self, split: str) -> dict[str, float]:
        """{"loss": ..., "accuracy": ...} over a whole split, in eval mode."""

    def learning_rate(self) -> float: ...


class ScalarSink(Protocol):
    def scalars(self, step: int, values: dict[str, float]) -> None: ...


@dataclass
class LoopSchedule:
    """When the loop stops, evaluates and logs (all in optimizer steps)."""

    max_steps: int
    eval_freq: int  # evaluate every this many steps, and always at the last step
    log_freq: int  # average train loss/accuracy over this many steps per logged point
    batch_size: int = 1  # images per step (the sampler checks it against the training split)
    eval_batch_size: int = 1  # images per forward pass in evaluation (the backend uses it)

    def __post_init__(self):
        for name in ("max_steps", "eval_freq", "log_freq", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


def is_better(metric: str, new: float, old: float | None) -> bool:
    """Losses improve downwards, everything else upwards."""
    if old is None:
        return True
    return new < old if metric.endswith("loss") else new > old


@dataclass
class FitResult:
    final: dict[str, float] = field(default_factory=dict)  # every metric at the last step
    best: dict[str, float] = field(default_factory=dict)  # val metrics at the best eval step
    steps: int = 0
    eval_s: float = 0.0  # wall seconds spent evaluating


def evaluate_all(backend: Backend) -> dict[str, float]:
    """Every eval split's metrics, keyed by TensorBoard tag ("val/accuracy", ...)."""
    return {
        f"{split}/{name}": value
        for split in backend.eval_splits
        for name, value in backend.evaluate(split).items()
    }


def fit(
    backend: Backend,
    sampler: BatchSampler,
    schedule: LoopSchedule,
    sink: ScalarSink,
    optimized_metric: str,
    progress: bool = True,
) -> FitResult:
    """Train for `schedule.max_steps` steps; returns the final and best-validation metrics."""
    result = FitResult()
    last_eval = ""
    bar = tqdm(total=schedule.max_steps, disable=not progress, unit="step", dynamic_ncols=True)
    try:
        for step in range(1, schedule.max_steps + 1):
            is_last = step == schedule.max_steps
            logs = step % schedule.log_freq == 0 or is_last
            if logs:
                lr = backend.learning_rate()  # the rate this step uses, before the schedule moves
            backend.train_step(sampler.next_batch())
            bar.update(1)
            if logs:
                loss, accuracy = backend.pop_train_stats()
                if not math.isfinite(loss):
                    raise DlexpError(
                        f"training diverged: train loss is {loss} at step {step}; "
                        f"try a lower optim.lr"
                    )
                train = {"train/loss": loss, "train/accuracy": accuracy}
                sink.scalars(step, {**train, "train/lr": lr})
                result.final.update(train)
                bar.set_postfix_str(f"loss {loss:.3f}{last_eval}", refresh=False)
            if step % schedule.eval_freq == 0 or is_last:
                eval_start = time.perf_counter()
                evaluated = evaluate_all(backend)
                result.eval_s += time.perf_counter() - eval_start
                sink.scalars(step, evaluated)
                result.final.update(evaluated)
                if optimized_metric in evaluated and is_better(
                    optimized_metric, evaluated[optimized_metric], result.best.get(optimized_metric)
                ):
                    val = {k: v for k, v in evaluated.items() if k.startswith("val/")}
                    result.best = {**val, "best_step": step}
                shown = "val/accuracy" if "val/accuracy" in evaluated else "test/accuracy"
                last_eval = f", {shown.split('/')[0]} acc {evaluated[shown]:.3f}"
            result.steps = step
    finally:
        bar.close()
    return result
