"""Print the final test accuracy's spread over each sweep's jobs, from its summary.csv."""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path


def spread_row(sweep_dir: Path) -> str:
    with (sweep_dir / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    test = [float(row["test/accuracy"]) for row in rows]  # jobs in sweep order: seed 1 first
    sd = statistics.stdev(test) if len(test) > 1 else float("nan")
    stats = (statistics.mean(test), sd, min(test), max(test))
    cells = [f"{v:.4f}" for v in stats] + [f"{statistics.mean(test[:3]):.4f}"]
    return f"| `{sweep_dir}` | {len(test)} | " + " | ".join(cells) + " |"


def main() -> None:
    print("| sweep | jobs | test mean | sd | min | max | first 3 jobs' mean |")
    print("|---|---|---|---|---|---|---|")
    for folder in sys.argv[1:]:
        print(spread_row(Path(folder)))


if __name__ == "__main__":
    main()
