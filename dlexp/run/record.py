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


def write_metrics(
    out: Path, cfg: DictConfig, result: FitResult, timing: dict, distributed: dict | None = None
) -> dict:
    """metrics.json: how the run ended, its objective, final and best metrics, timing; and for a
    data-parallel run, `distributed`: {world_size, backend}."""
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
        **({"distributed": distributed} if distributed else {}),
    }
    # atomic: a kill mid-write must not leave a half file that reads as a failed run
    write_atomically(out / "metrics.json", [(json.dumps(record, indent=2) + "\n").encode()])
    return record


def run_timing(result, first_step: int, resumed_eval_s: float, wall: float, startup_s: float,
               compile_s: float, threads: int) -> dict:  # fmt: skip
    """metrics.json's `timing`: this process's steps per second leave out evaluation and
    torch.compile's first steps (a resumed run counts from its checkpoint)."""
    eval_s = result.eval_s - resumed_eval_s
    return {
        "wall_s": round(wall, 3),
        "startup_s": round(startup_s, 3),
        "eval_s": round(result.eval_s, 3),
        # training steps of this process only (a resumed run counts from its checkpoint)
        "steps_per_s": round((result.steps - first_step) / max(wall - eval_s - compile_s, 1e-9), 2),
        "threads": threads,  # CPU threads this job used (a parallel sweep splits the cores)
        "compile_s": round(compile_s, 3),  # in wall_s, not in steps_per_s
    }


def finished_line(result, first_step: int, wall: float, startup_s: float, out: Path) -> str:
    """The line a run ends its log with: its steps, time, status and accuracies, its folder."""
    final = result.final
    shown = " | ".join(
        f"{k} {final[k]:.4f}" for k in ("val/accuracy", "test/accuracy") if k in final
    )
    ended = "" if result.status == "completed" else f" ({result.status}: {result.reason})"
    ran = result.steps - first_step  # this process's steps: a resume ran from its checkpoint on
    steps = (
        f"{ran} steps"
        if not first_step
        else f"{ran} steps (resumed: {first_step + 1}-{result.steps})"
    )
    return f"{steps} in {wall:.1f}s (start-up {startup_s:.1f}s){ended} | {shown} | {out}"


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


def record_rank_failure(out: Path, cfg: DictConfig, reason: str, distributed: dict) -> None:
    """A data-parallel run whose rank failed: metrics.json says failed with `reason` (naming
    the rank), and keeps what rank 0 recorded of the run (its step, metrics and timing)."""
    written = read_job_record(out) if (out / "metrics.json").is_file() else {}
    record = {
        "status": "failed",
        "reason": reason,
        "steps": written.get("steps", 0),
        "optimized_metric": cfg.optimized_metric,
        "objective": written.get("objective"),
        **{key: written.get(key) or {} for key in ("final", "best", "timing")},
        **({"warnings": written["warnings"]} if written.get("warnings") else {}),
        "distributed": distributed,
    }
    write_atomically(out / "metrics.json", [(json.dumps(record, indent=2) + "\n").encode()])


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
