"""The one training loop: step, log, evaluate; written once for every backend."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tqdm.auto import tqdm

from dlexp.data.sampler import BatchIndices, BatchSampler
from dlexp.errors import ConfigError, DlexpError
from dlexp.run.record import RunStopped, metric_direction

log = logging.getLogger("dlexp")

# Called after every evaluation with the step and the evaluated metrics ("val/accuracy", ...);
# a hook may raise RunStopped to end the run (pruning, early stopping).
EvalHook = Callable[[int, dict[str, float]], str | None]  # a warning line, or None


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
    """Where the loop's numbers go (dlexp.run.loggers fans them out to the chosen loggers)."""

    def scalars(self, step: int, values: dict[str, float]) -> None: ...

    def step_done(self, step: int) -> None:
        """After every optimizer step (weight histograms); optional."""


class Checkpoints(Protocol):
    def due(self, step: int, is_last: bool) -> bool: ...

    def save(self, step: int, result: FitResult, last: bool = True) -> None: ...


class StopFlag(Protocol):
    """Set by a signal handler (dlexp.run.signals); polled after every step."""

    requested: bool

    def signal_name(self) -> str: ...


@dataclass
class LoopSchedule:
    """When the loop stops, evaluates, logs and checkpoints (all in optimizer steps)."""

    max_steps: int
    eval_freq: int  # evaluate every this many steps, and always at the last step
    log_freq: int  # average train loss/accuracy over this many steps per logged point
    batch_size: int = 1  # images per step (the sampler checks it against the training split)
    eval_batch_size: int = 1  # images per forward pass in evaluation (the backend uses it)
    checkpoint_every: int | None = None  # None: at every evaluation; 0: only at the end or a stop

    def __post_init__(self):
        for name in ("max_steps", "eval_freq", "log_freq", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every is not None and self.checkpoint_every < 0:
            raise ConfigError(
                f"checkpoint.every must be >= 0 (or null), got {self.checkpoint_every}"
            )

    @property
    def checkpoint_interval(self) -> int:
        """Steps between checkpoints (RunCheckpoints' `every`)."""
        return self.eval_freq if self.checkpoint_every is None else self.checkpoint_every


def is_better(metric: str, new: float, old: float | None) -> bool:
    """Losses improve downwards, everything else upwards."""
    if old is None:
        return True
    return new < old if metric_direction(metric) == "minimize" else new > old


@dataclass
class FitResult:
    """What fit() has done so far; the caller owns it, so it survives a failure mid-run."""

    final: dict[str, float] = field(default_factory=dict)  # every metric at the last step
    best: dict[str, float] = field(default_factory=dict)  # val metrics at the best eval step
    steps: int = 0  # the last step completed
    eval_s: float = 0.0  # wall seconds spent evaluating
    status: str = "completed"  # or how a RunStopped hook ended it (dlexp.run.record)
    reason: str = ""  # one line, when the status is not completed
    warnings: list[str] = field(default_factory=list)  # what eval hooks noticed (NotLearning)


class EarlyStopping:
    """An eval hook: stop once `patience` evaluations in a row have not improved `metric`."""

    def __init__(self, metric: str, patience: int):
        if patience < 1:
            raise ConfigError(f"early_stop.patience must be >= 1 (or null), got {patience}")
        self.metric, self.patience = metric, patience
        self.best: float | None = None
        self.stale = 0  # evaluations since the last improvement

    def state_dict(self) -> dict:
        return {"best": self.best, "stale": self.stale}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.stale = state["best"], state["stale"]

    def __call__(self, step: int, evaluated: dict[str, float]) -> None:
        value = evaluated[self.metric]
        if is_better(self.metric, value, self.best):
            self.best, self.stale = value, 0
            return
        self.stale += 1
        if self.stale >= self.patience:
            raise RunStopped(
                "early_stopped",
                f"{self.metric} has not improved on {self.best:.4f} for {self.stale} evaluations",
            )


class NotLearning:
    """An eval hook that warns once when the train loss has stayed within 1% of ln(n_classes),
    the loss of a uniform guess, over the first `evaluations` evaluations: a run at chance level.
    `fix` is the likely cause and the override that fixes it, for the run's model."""

    def __init__(self, n_classes: int, fix: str, evaluations: int = 3):
        self.chance, self.n_classes = math.log(n_classes), n_classes
        self.fix, self.evaluations = fix, evaluations
        self.seen = 0  # evaluations checked so far
        self.flat = True  # the train loss has stayed at chance in all of them

    def state_dict(self) -> dict:
        return {"seen": self.seen, "flat": self.flat}

    def load_state_dict(self, state: dict) -> None:
        self.seen, self.flat = state["seen"], state["flat"]

    def __call__(self, step: int, metrics: dict[str, float]) -> str | None:
        if self.seen >= self.evaluations:
            return None
        self.seen += 1
        loss = metrics.get("train/loss")
        at_chance = loss is not None and abs(loss - self.chance) <= 0.01 * self.chance
        self.flat = self.flat and at_chance
        if self.seen < self.evaluations or not self.flat:
            return None
        return (
            f"not learning: the train loss is still {loss:.4f}, chance level "
            f"(ln {self.n_classes} = {self.chance:.4f}), after {self.evaluations} evaluations "
            f"(step {step}); {self.fix}"
        )


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
    result: FitResult,
    progress: bool = True,
    eval_hooks: Sequence[EvalHook] = (),
    checkpoints: Checkpoints | None = None,
    stop: StopFlag | None = None,
) -> FitResult:
    """Train from step `result.steps + 1` (0 on a fresh run, the checkpoint's step on a resume)
    to `schedule.max_steps`, updating `result` (final and best-validation metrics, steps done).

    A RunStopped from an eval hook ends the run early; so does a stop signal, after its step
    and a checkpoint.
    """
    last_loss, last_eval = "", ""
    step_done = getattr(sink, "step_done", None)
    bar = tqdm(
        total=schedule.max_steps,
        initial=result.steps,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
    )
    try:
        if stop is not None and stop.requested:  # a signal while the run was starting
            raise RunStopped(
                "interrupted", f"stopped by {stop.signal_name()} before step {result.steps + 1}"
            )
        for step in range(result.steps + 1, schedule.max_steps + 1):
            is_last = step == schedule.max_steps
            logs = step % schedule.log_freq == 0 or is_last
            if logs:
                lr = backend.learning_rate()  # the rate this step uses, before the schedule moves
            backend.train_step(sampler.next_batch())
            result.steps = step
            bar.update(1)
            if step_done is not None:
                step_done(step)
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
                last_loss = f"loss {loss:.3f}"
                bar.set_postfix_str(f"{last_loss}{last_eval}", refresh=False)
            evaluates = step % schedule.eval_freq == 0 or is_last
            if evaluates:
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
                shown_now = f"{last_loss}{last_eval}".lstrip(", ")
                bar.set_postfix_str(shown_now, refresh=False)  # the bar's last frame shows it
                try:
                    for hook in eval_hooks:  # with the latest train metrics too
                        warning = hook(step, {**result.final, **evaluated})
                        if warning:
                            result.warnings.append(warning)
                            log.warning("%s", warning)
                except RunStopped:
                    if checkpoints is not None:  # the state it stopped in, for dlexp-eval
                        checkpoints.save(step, result)
                    raise
            if checkpoints is not None and (evaluates or checkpoints.due(step, is_last)):
                # `last` when due; `best` whenever this evaluation is the best so far
                checkpoints.save(step, result, last=checkpoints.due(step, is_last))
            if stop is not None and stop.requested and not is_last:
                if checkpoints is not None:
                    checkpoints.save(step, result)
                raise RunStopped("interrupted", f"stopped by {stop.signal_name()} at step {step}")
    except RunStopped as stopped:
        result.status, result.reason = stopped.status, stopped.reason
    finally:
        bar.close()
    return result
