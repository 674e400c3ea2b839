"""A Hydra callback that tabulates a multirun: summary.csv, summary.md (its jobs, then its seed
groups) and groups.csv in the sweep folder."""

from __future__ import annotations

import csv
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dlexp.report.group_tables import write_group_tables
from dlexp.run.folder import job_number, read_overrides
from dlexp.run.record import read_job_record

# train/accuracy is what a sweep without a validation split selects on (the seed_* presets).
SHOWN_METRICS = (
    "val/accuracy",
    "val/loss",
    "test/accuracy",
    "test/loss",
    "train/accuracy",
    "train/loss",
)


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """One row per job folder (one with .hydra/): status, overrides, metrics, and the folder
    relative to `sweep_dir`, where summary.md lies (`sweep_dir / row["run_dir"]` finds it)."""
    rows = []
    job_dirs = sorted((p.parent for p in sweep_dir.glob("*/.hydra")), key=_job_order)
    for job_dir in job_dirs:
        record = read_job_record(job_dir)
        final = record.get("final", {})
        rows.append(
            {
                "job": job_dir.name,
                "status": record.get("status", "completed"),  # runs from before statuses
                "steps": record.get("steps", ""),
                "overrides": " ".join(read_overrides(job_dir, skip_plumbing=False)),
                "objective": "" if record.get("objective") is None else record["objective"],
                **{m: final.get(m, "") for m in SHOWN_METRICS},
                "reason": record.get("reason", ""),
                "run_dir": job_dir.relative_to(sweep_dir).as_posix(),
            }
        )
    return rows


def _job_order(job_dir: Path):
    number = job_number(job_dir)
    return (0, number, job_dir.name) if number is not None else (1, 0, job_dir.name)


def write_table(rows: list[dict], folder: Path, stem: str, float_format: str) -> None:
    """<stem>.csv and <stem>.md (a markdown table, `|` in cells escaped) from the same rows."""
    header = list(rows[0])
    with (folder / f"{stem}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [format(v, float_format) if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    (folder / f"{stem}.md").write_text("\n".join(lines) + "\n")


def write_summary(sweep_dir: Path) -> list[dict]:
    rows = collect_jobs(sweep_dir)
    if rows:
        write_table(rows, sweep_dir, "summary", ".4f")
        # groups.csv, and the seed groups at the end of summary.md
        write_group_tables(sweep_dir, [sweep_dir / row["run_dir"] for row in rows])
    return rows


def status_counts(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


class SweepSummary(Callback):
    """Runs after every multirun, whatever the launcher, by reading the job folders back."""

    last_failed: int = 0  # failed jobs of this process's last sweep: the command exits non-zero
    running: Path | None = None  # the folder of the sweep under way

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        SweepSummary.last_failed = 0
        SweepSummary.running = Path(config.hydra.sweep.dir)

    @classmethod
    def write_if_running(cls) -> None:
        """A sweep stopped by a signal skips on_multirun_end: write what its jobs left."""
        if cls.running is not None:
            write_summary(cls.running)
            cls.running = None

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        SweepSummary.running = None
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = write_summary(sweep_dir)
        if rows:
            counts = status_counts(rows)
            SweepSummary.last_failed = counts.get("failed", 0)
            tally = ", ".join(f"{n} {status}" for status, n in counts.items())
            print(f"sweep summary ({len(rows)} jobs: {tally}): {sweep_dir / 'summary.md'}")
