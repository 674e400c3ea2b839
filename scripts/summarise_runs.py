"""Print a markdown table of every run folder under the given folders (overrides and metrics)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

COLUMNS = ("val/accuracy", "test/accuracy", "best val/accuracy", "best_step", "wall_s")


def row(run: Path) -> list[str]:
    metrics = json.loads((run / "metrics.json").read_text())
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()) or []
    shown = " ".join(o for o in overrides if not o.startswith(("task_name", "progress")))
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
