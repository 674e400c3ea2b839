"""How a trial's job ended, read back from its metrics.json, in the study's terms."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hydra.core.utils import JobReturn

from dlexp.run.record import SUCCESSFUL, read_job_record


@dataclass
class Outcome:
    """What a job's metrics.json says, in the study's terms."""

    state: str  # complete | pruned | fail
    value: float | None
    status: str  # the run's own status (dlexp.run.record), or "missing"
    reason: str
    steps: int | None
    job_dir: str


def read_outcome(ret: JobReturn) -> Outcome:
    """completed/early_stopped with an objective: complete; pruned: pruned; anything else: fail."""
    hydra_cfg = getattr(ret, "hydra_cfg", None)
    job_dir = str(hydra_cfg.hydra.runtime.output_dir) if hydra_cfg is not None else ""
    path = Path(job_dir) / "metrics.json"
    if not job_dir or not path.is_file():
        error = getattr(ret, "_return_value", None)
        reason = f"no metrics.json in {job_dir or 'the job folder'}"
        return Outcome(
            "fail", None, "missing", f"{reason}: {error}" if error else reason, None, job_dir
        )
    record = read_job_record(Path(job_dir))  # an unreadable file reads as a failed run
    status, reason = record.get("status", "completed"), record.get("reason", "")
    value, steps = record.get("objective"), record.get("steps")
    if status in SUCCESSFUL:
        if value is not None and math.isfinite(value):
            return Outcome("complete", float(value), status, reason, steps, job_dir)
        reason = reason or f"no finite objective in {path}"
    state = "pruned" if status == "pruned" else "fail"
    return Outcome(state, None, status, reason, steps, job_dir)
