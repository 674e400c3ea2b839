"""`dlexp-runs [FOLDER ...]`: every run under the folders (./outputs by default), one row each."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections import Counter
from pathlib import Path

from dlexp.errors import DlexpError
from dlexp.report.estimates import Estimate, estimate
from dlexp.report.group_tables import figure, mean_text
from dlexp.report.plot import differing_keys, short_names
from dlexp.report.run_listing import ListedRun, filter_runs, list_runs, sort_runs
from dlexp.report.seed_groups import Member, SeedGroup, group_runs, seed_text
from dlexp.report.terminal import rich_table
from dlexp.report.terminal import show as show_in_terminal

COLUMNS = ("name", "status", "started", "task", "overrides", "objective",
           "val/accuracy", "test/accuracy", "steps", "wall")  # fmt: skip
SORT_ALIASES = {"wall": "wall_s", "time": "wall_s", "start": "started"}


def wall_text(seconds: float | None) -> str:
    """`5.8s`, `17m03s`, `2h05m`."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def run_object(run: ListedRun) -> dict:
    """What --json prints for a run (its every override; the table shows the differing ones)."""
    return {
        "name": run.name,
        "path": str(run.path),
        "status": run.status,
        "reason": run.record.get("reason", ""),
        "started": run.started.isoformat(timespec="seconds") if run.started else None,
        "task": run.task,
        "overrides": run.overrides,
        "optimized_metric": run.record.get("optimized_metric"),
        "objective": run.record.get("objective"),
        "final": run.final,
        "best": run.best,
        "steps": run.record.get("steps"),
        "wall_s": run.wall_s,
    }


def estimate_object(e: Estimate | None) -> dict | None:
    if e is None:
        return None
    return {"n": e.n, "mean": e.mean, "sd": e.sd, "ci95_low": e.low, "ci95_high": e.high}


def values_estimate(values) -> Estimate | None:
    values = [v for v in values if isinstance(v, int | float)]
    return estimate(values) if values else None


def of_kind(stats: dict[str, Estimate], kind: str) -> dict[str, dict | None]:
    """`final test/accuracy` -> {"test/accuracy": {n, mean, ...}} for `kind` final."""
    return {
        name.split(" ", 1)[1]: estimate_object(e)
        for name, e in stats.items()
        if name.startswith(f"{kind} ")
    }


def group_object(group: SeedGroup, runs: dict[Path, ListedRun]) -> dict:
    """What --json --group-seeds prints for a seed group: estimates instead of values."""
    members = [runs[m.folder] for m in group.members]
    finished = [runs[m.folder] for m in group.finished]
    common = os.path.commonpath([r.name for r in members]) if len(members) > 1 else members[0].name
    started = [r.started for r in members if r.started]
    stats = group.statistics
    return {
        "name": common or members[0].name,
        "group": group.label,
        "runs": [r.name for r in members],
        "path": os.path.commonpath([str(r.path) for r in members]),
        "status": dict(Counter(r.status for r in members)),
        "started": min(started).isoformat(timespec="seconds") if started else None,
        "task": members[0].task,
        "seeds": group.seeds,
        "objective": estimate_object(values_estimate(r.record.get("objective") for r in finished)),
        **{kind: of_kind(stats, kind) for kind in ("final", "best")},
        "steps": sorted({s for r in finished if isinstance(s := r.record.get("steps"), int)}),
        "wall_s": estimate_object(values_estimate(r.wall_s for r in finished)),
    }


def run_cells(run: ListedRun, shown: dict[str, str]) -> list[str]:
    """A table row: `shown` names the differing override keys (`optim.lr` -> `lr`)."""
    overrides = " ".join(f"{s}={run.overrides[k]}" for k, s in shown.items() if k in run.overrides)
    started = f"{run.started:%Y-%m-%d %H:%M}" if run.started else "–"
    objective = run.record.get("objective")
    return [run.name, run.status, started, run.task, overrides,
            figure(objective) if isinstance(objective, float) else "–",
            figure(run.final.get("val/accuracy")), figure(run.final.get("test/accuracy")),
            str(run.record.get("steps", "–")), wall_text(run.wall_s)]  # fmt: skip


def group_cells(obj: dict, group: SeedGroup) -> list[str]:
    """A folded table row: means ± their 95% intervals (n)."""
    stats = group.statistics
    runs = len(obj["runs"])
    cells = [obj["name"] + (f" ({runs} runs)" if runs > 1 else ""), status_text(obj["status"])]
    cells += [obj["started"][:16].replace("T", " ") if obj["started"] else "–", obj["task"]]
    cells += [group.label, seed_text(group.seeds)]
    objective = values_estimate(m.record.get("objective") for m in group.finished)
    for e in (objective, stats.get("final val/accuracy"), stats.get("final test/accuracy")):
        cells.append("–" if e is None else mean_text(e))
    steps = obj["steps"] or ["–"]
    wall = values_estimate(m.record.get("timing", {}).get("wall_s") for m in group.finished)
    return [*cells, "/".join(map(str, steps)), wall_text(wall.mean if wall else None)]


def status_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def strict_json(value):
    """NaN and infinity (a diverged run's loss) as null: JSON has no such numbers."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strict_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def flat_row(obj: dict, prefix: str = "") -> dict:
    """A --json object as one CSV row: nested keys joined by `.`, lists by spaces."""
    row = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            row.update(flat_row(value, f"{prefix}{key}."))
        else:
            row[f"{prefix}{key}"] = " ".join(map(str, value)) if isinstance(value, list) else value
    return row


def print_csv(objects: list[dict]) -> None:
    rows = [flat_row(o) for o in objects]
    header = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(sys.stdout, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def show(runs: list[ListedRun], args: argparse.Namespace) -> None:
    """The listing in the format asked for: a table, --json or --csv; folded with --group-seeds."""
    tally = f"{len(runs)} runs: {status_text(dict(Counter(r.status for r in runs)))}"
    if args.group_seeds:
        by_folder = {r.path: r for r in runs}
        groups = group_runs([Member(r.path, r.config, r.record) for r in runs])
        objects = [group_object(g, by_folder) for g in groups]
        header = ["name", "status", "started", "task", "group", "seeds", "objective",
                  "val/accuracy", "test/accuracy", "steps", "wall (mean)"]  # fmt: skip
        rows = [group_cells(o, g) for o, g in zip(objects, groups, strict=True)]
        caption = f"{tally}; {len(groups)} seed groups, means ± 95% CI (n)"
    else:
        objects = [run_object(r) for r in runs]
        shown = short_names(differing_keys([r.path for r in runs]))
        header, rows, caption = list(COLUMNS), [run_cells(r, shown) for r in runs], tally
    if args.json:
        print(json.dumps(strict_json(objects), indent=2))
    elif args.csv:
        print_csv(objects)
    elif not runs:
        print(f"No runs under {', '.join(map(str, args.folders))}.")
    else:
        show_in_terminal(rich_table(header, rows), caption)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dlexp-runs",
        description=__doc__,
        epilog="A run folder holds .hydra/, metrics.json or environment.json. A run without "
        "metrics.json is `running` while its recorded process lives on this host, else `killed`. "
        "Folders that refused configs left behind are not runs. The overrides column shows only "
        "the keys that differ between the listed runs; --json gives every one.",
    )
    p.add_argument("folders", nargs="*", type=Path, default=[Path("outputs")], metavar="FOLDER")
    p.add_argument("--status", action="append", default=[], help="only these (repeatable, or a,b)")
    p.add_argument("--task", action="append", default=[], help="only these task_names")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="only runs whose override or config KEY is VALUE (repeatable)")  # fmt: skip
    p.add_argument(
        "--sort",
        metavar="KEY",
        default="started",
        help="name, status, started (default), task, objective, steps, wall_s, "
        "a metric (test/accuracy, best.val/accuracy: best first), a config key",
    )
    p.add_argument("--reverse", action="store_true", help="the other order")
    p.add_argument("--group-seeds", action="store_true",
                   help="one row per seed group (runs alike but for their seed): "
                   "mean ± 95%% CI")  # fmt: skip
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="a JSON list of objects")
    out.add_argument("--csv", action="store_true", help="the same as CSV")
    return p


def split_commas(values: list[str]) -> list[str]:
    return [v for value in values for v in value.split(",") if v]


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        runs = list_runs(args.folders)
        runs = filter_runs(runs, split_commas(args.status), split_commas(args.task), args.where)
        show(sort_runs(runs, SORT_ALIASES.get(args.sort, args.sort), args.reverse), args)
    except DlexpError as err:
        print(f"dlexp-runs: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
