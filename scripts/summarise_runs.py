"""Print a markdown table of every run folder under the given folders (overrides and metrics)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dlexp.run.folder import read_overrides

COLUMNS = ("val/accuracy", "test/accuracy", "best val/accuracy", "best_step", "wall_s")


def row(run: Path) -> list[str]:
    metrics = json.loads((run / "metrics.json").read_text())
    shown = " ".join(read_overrides(run))
    values = [
        metrics["final"].get("val/accuracy"),
        metrics["final"].get("test/accuracy"),
        metrics["best"].get("val/accuracy"),
        metrics["best"].get("best_step"),
        metrics["timing"]["wall_s"],
    ]
    return [
        f"`{shown or '(defaults)'}`",
        *(f"{v:.4f}" if isinstance(v, float) else str(v) for v in values),
    ]


def main() -> None:
    runs = sorted(p.parent for folder in sys.argv[1:] for p in Path(folder).glob("*/metrics.json"))
    print("| overrides | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for run in runs:
        print("| " + " | ".join(row(run)) + " |")


if __name__ == "__main__":
    main()
