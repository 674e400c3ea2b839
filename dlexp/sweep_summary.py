"""A Hydra callback that tabulates a multirun: summary.csv and summary.md in the sweep folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dlexp.run_folder import read_overrides

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
    """One row per job folder that holds a metrics.json: overrides, final metrics, folder."""
    rows = []
    for metrics_file in sorted(
        sweep_dir.glob("*/metrics.json"), key=lambda p: _job_order(p.parent)
    ):
        job_dir = metrics_file.parent
        overrides = read_overrides(job_dir, skip_plumbing=False)
        final = json.loads(metrics_file.read_text())["final"]
        rows.append(
            {
                "job": job_dir.name,
                "overrides": " ".join(overrides),
                **{m: final.get(m, "") for m in SHOWN_METRICS},
                "run_dir": str(job_dir),
            }
        )
    return rows


def _job_order(job_dir: Path):
    return (0, int(job_dir.name)) if job_dir.name.isdigit() else (1, job_dir.name)


def write_summary(sweep_dir: Path) -> list[dict]:
    rows = collect_jobs(sweep_dir)
    if not rows:
        return rows
    with (sweep_dir / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")
    return rows


class SweepSummary(Callback):
    """Runs after every multirun, whatever the launcher, by reading the job folders back."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = write_summary(sweep_dir)
        if rows:
            print(f"sweep summary ({len(rows)} jobs): {sweep_dir / 'summary.md'}")
