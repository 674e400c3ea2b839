"""A run's record, metrics.json: how it ended (status, reason, step), its objective, its metrics
and timing; which metrics may be optimised, and in which direction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from dlexp.errors import ConfigError, failure_reason
from dlexp.run.atomic_write import write_atomically
from dlexp.run.environment import still_running

if TYPE_CHECKING:  # the loop imports this module for RunStopped and metric_direction
    from dlexp.loop import FitResult

# completed: reached max_steps; failed: an error (the one-line reason is recorded);
# pruned: the search's pruner stopped it; early_stopped: early_stop.patience ran out;
# interrupted: a signal (Ctrl-C, SIGTERM, SIGUSR2) stopped it after a checkpoint.
# (A run with no metrics.json yet reads as `running` while its process lives, else `failed`.)
STATUSES = ("completed", "failed", "pruned", "early_stopped", "interrupted")
SUCCESSFUL = ("completed", "early_stopped")  # runs whose objective a search may use
# A job that died without a word (killed, out of memory) has a .hydra/ folder and no metrics.
NO_METRICS = {"status": "failed", "reason": "no metrics.json: the job's process died", "final": {}}


class RunStopped(Exception):  # noqa: N818 (a way to end, not an error)
    """Raised from a loop hook to end a run cleanly before max_steps, with its status."""

    def __init__(self, status: str, reason: str):
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        super().__init__(reason)
        self.status = status
        self.reason = reason


TEST_METRIC_ADVICE = {  # why a test metric is refused, and what to use instead, by who asks
    "run": "test data is reported, never optimised; use val/accuracy",
    "search": "a search selects on validation, never on test; use val/accuracy or val/loss",
}


def metric_direction(metric: str, asker: str = "run") -> str:
    """`minimize` for a loss, `maximize` for anything else. A test metric is refused: test data
    is reported, never optimised (by a run, a search, or a report's ranking)."""
    if metric.startswith("test/"):
        advice = TEST_METRIC_ADVICE[asker]
        raise ConfigError(f"optimized_metric {metric} is a test metric: {advice}")
    return "minimize" if metric.endswith("loss") else "maximize"


def objective(result: FitResult, metric: str) -> float | None:
    """What a search optimises: the best value of `metric` at an evaluation; a train metric
    (the course protocol has no validation split) is taken at the last logged step."""
    value = result.best.get(metric, result.final.get(metric))
    return None if value is None else float(value)


def write_metrics(out: Path, cfg: DictConfig, result: FitResult, timing: dict) -> dict:
    """metrics.json: how the run ended, its objective, final and best metrics, timing."""
    record = {
        "status": result.status,
        **({"reason": result.reason} if result.reason else {}),
        "steps": result.steps,
        "optimized_metric": cfg.optimized_metric,
        "objective": objective(result, cfg.optimized_metric),
        "final": result.final,
        "best": result.best,
        "timing": timing,
        **({"warnings": result.warnings} if result.warnings else {}),  # what the run noticed
    }
    # atomic: a kill mid-write must not leave a half file that reads as a failed run
    write_atomically(out / "metrics.json", [(json.dumps(record, indent=2) + "\n").encode()])
    return record


def record_failure(cfg: DictConfig, result: FitResult, err: Exception | None) -> None:
    """A failed run still leaves metrics.json: status failed, the one-line reason, its step.
    With `err` None, `result` already holds the status and reason.

    A resume refused before its first step (a changed key, a bad checkpoint) writes nothing:
    the run's folder stays as it was."""
    try:
        out = Path(cfg.output_dir)
    except Exception:  # train() called without an output_dir: nowhere to write
        return
    refused_resume = result.steps == 0 and (
        cfg.resume is not None or (out / "checkpoints").is_dir()
    )
    if out.is_dir() and not refused_resume:
        if err is not None:
            result.status, result.reason = "failed", failure_reason(err)
        write_metrics(out, cfg, result, timing={})


def read_job_record(job_dir: Path) -> dict:
    """A job's metrics.json, or a failed record when the job left none (or a broken one)."""
    try:
        return json.loads((job_dir / "metrics.json").read_text())
    except FileNotFoundError:
        pid = still_running(job_dir)
        if pid is not None:
            return {**NO_METRICS, "status": "running", "reason": f"running (pid {pid})"}
        return NO_METRICS
    except (OSError, ValueError) as err:
        return {**NO_METRICS, "reason": f"unreadable metrics.json: {err}"}
