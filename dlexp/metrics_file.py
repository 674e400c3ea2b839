"""A run's metrics.json: how it ended (status, reason, step), its objective, metrics and timing."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from dlexp.checkpoint import write_atomically
from dlexp.cli import failure_reason
from dlexp.loop import FitResult


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
