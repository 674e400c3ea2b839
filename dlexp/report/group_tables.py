"""Seed groups as tables: groups.csv and the `Seed groups` section of summary.md, written when a
sweep ends, and the same table in dlexp-report."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from dlexp.report.estimates import CONFIDENCE, Estimate
from dlexp.report.render import Table
from dlexp.report.seed_groups import SeedGroup, group_runs, member_name, read_member, seed_text

CSV_COLUMNS = ("group", "runs", "seeds", "jobs", "kind", "metric", "n", "mean", "sd",
               "ci95_low", "ci95_high")  # fmt: skip
TABLE_HEADER = ["group", "seeds", "runs", "metric", "n", "mean", "sd", "95% CI"]
ABOUT = (
    "Runs whose resolved configs differ only in `seed` (plumbing aside) form a group. Its "
    "statistics take its completed and early-stopped runs: the mean, the standard deviation and "
    f"a {CONFIDENCE:.0%} confidence interval from Student's t; a best metric is at the best "
    "validation step. A group of one run has no spread, so no interval (n=1)."
)


def figure(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def interval_text(e: Estimate, digits: int = 4) -> str:
    """`±0.0076 [0.4436, 0.4588]`, or `n=1` where one run gives no interval."""
    if e.half is None:
        return f"n={e.n}"
    return f"±{e.half:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def mean_text(e: Estimate, digits: int = 4) -> str:
    """`0.4512 ± 0.0076 (n=5)`: a mean and its interval in one cell; `0.4512 (n=1)`."""
    if e.half is None:
        return f"{e.mean:.{digits}f} (n={e.n})"
    return f"{e.mean:.{digits}f} ± {e.half:.{digits}f} (n={e.n})"


def runs_text(group: SeedGroup) -> str:
    """`5`, or `5 (1 failed, 1 running)` when some runs do not count."""
    left_out = Counter(m.record.get("status", "?") for m in group.members if not m.finished)
    if not left_out:
        return str(len(group.members))
    return f"{len(group.members)} ({', '.join(f'{n} {s}' for s, n in left_out.items())})"


def csv_rows(groups: list[SeedGroup]) -> list[dict]:
    """One row per group and metric; a group without a finished run has one row without one."""
    rows = []
    for group in groups:
        head = {
            "group": group.label,
            "runs": len(group.members),
            "seeds": " ".join(map(str, group.seeds)),
            "jobs": " ".join(member_name(m.folder) for m in group.members),
        }
        stats = group.statistics or {" ": None}
        for name, e in stats.items():
            kind, metric = name.split(" ", 1)
            rows.append({**head, "kind": kind, "metric": metric, "n": 0 if e is None else e.n,
                         "mean": "" if e is None else e.mean,
                         "sd": "" if e is None or e.sd is None else e.sd,
                         "ci95_low": "" if e is None or e.low is None else e.low,
                         "ci95_high": "" if e is None or e.high is None else e.high})  # fmt: skip
    return rows


def groups_table(groups: list[SeedGroup], metrics: list[str] | None = None) -> Table:
    """A row per group and metric (only `metrics` when given); the group's cells on its first."""
    rows, classes = [], []
    for group in groups:
        names = [n for n in group.statistics if metrics is None or n in metrics]
        head = [group.label, seed_text(group.seeds), runs_text(group)]
        if not names:
            rows.append([*head, "(no finished run)", "0", "–", "–", "–"])
            classes.append("failed")
        for i, name in enumerate(names):
            e = group.statistics[name]
            cells = [name, str(e.n), figure(e.mean), figure(e.sd), interval_text(e)]
            rows.append([*(head if i == 0 else [""] * len(head)), *cells])
            classes.append("")
    return Table(TABLE_HEADER, rows, classes)


def markdown_table(table: Table) -> str:
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def summary_section(groups: list[SeedGroup]) -> str:
    """summary.md's `Seed groups` section: the table, or one line when no two runs group."""
    if all(len(g.members) == 1 for g in groups):
        table = "No two jobs differ only in their seed: every group is one job (n=1), listed in "
        return f"## Seed groups\n\n{table}groups.csv.\n"
    return f"## Seed groups\n\n{ABOUT}\n\n{markdown_table(groups_table(groups))}\n"


def write_group_tables(sweep_dir: Path, job_dirs: list[Path]) -> list[SeedGroup]:
    """groups.csv beside summary.csv, and the `Seed groups` section at the end of summary.md."""
    groups = group_runs([read_member(job) for job in job_dirs])
    with (sweep_dir / "groups.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(groups))
    summary = sweep_dir / "summary.md"
    if summary.is_file():
        summary.write_text(summary.read_text() + "\n" + summary_section(groups))
    return groups
