"""`dlexp-compare A B [...]`: whether B beats A, across seeds, and by how much. Each argument is a
run, or a sweep or folder whose seed groups are compared, each against the first."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from dlexp.errors import DlexpError
from dlexp.report.compare import (
    Side,
    compared_metrics,
    differences,
    differing_config,
    read_sides,
)
from dlexp.report.estimates import CONFIDENCE
from dlexp.report.group_curves import plot_groups
from dlexp.report.group_tables import mean_text, runs_text
from dlexp.report.render import Document, Image, Section, Table, Text, to_html, to_markdown
from dlexp.report.seed_groups import headline_metrics, seed_text
from dlexp.report.terminal import rich_table, show

FILES_FOLDER = "compare_files"  # the PNGs compare.md links to, next to it
ABOUT = (
    f"Each cell is a mean over a group's completed and early-stopped runs, ± the half-width of "
    f"its {CONFIDENCE:.0%} confidence interval (Student's t), and n; a group of one run has no "
    f"interval. A difference's interval is Welch's (unequal variances); one that holds 0 means "
    "the runs cannot tell the two groups apart."
)


def default_out(now: datetime) -> Path:
    return Path("outputs") / "compare" / f"{now:%Y-%m-%d_%H-%M-%S_%f}"


def sides_table(sides: list[Side]) -> Table:
    rows = [[s.tag, str(s.source), s.group.label, runs_text(s.group), seed_text(s.group.seeds)]
            for s in sides]  # fmt: skip
    return Table(["", "run or folder", "group", "runs", "seeds"], rows)


def config_table(sides: list[Side]) -> Table | Text:
    rows = differing_config(sides)
    if not rows:
        return Text("None: the resolved configs are equal (plumbing aside).")
    return Table(["key", *(s.tag for s in sides)], rows)


def metrics_table(sides: list[Side], names: list[str]) -> Table:
    rows = []
    for name in names:
        cells = [s.group.statistics.get(name) for s in sides]
        rows.append([name, *("–" if e is None else mean_text(e) for e in cells)])
    return Table(["metric", *(s.tag for s in sides)], rows)


def differences_block(sides: list[Side], sentences) -> Table | Text:
    if not sentences:
        return Text(f"No metric that {sides[0].tag} and another group both have: nothing finished.")
    return Table(["metric", "in words"], [[name, text] for _, name, text in sentences])


def curve_images(sides: list[Side], out_dir: Path) -> list[Image]:
    groups = [(s.tag, [m.folder for m in s.group.finished]) for s in sides]
    if not any(runs for _, runs in groups):
        return []
    return [Image(png, caption) for png, caption in plot_groups(groups, out_dir)]


def build_document(sides: list[Side], out_dir: Path, now: datetime) -> Document:
    names = compared_metrics(sides)
    sentences = differences(sides, names)
    title = f"Comparison: {' vs '.join(s.tag for s in sides)}"
    sections = [
        Section("Compared", [sides_table(sides)]),
        Section("Config keys that differ", [config_table(sides)]),
        Section("Metrics side by side", [Text(ABOUT), metrics_table(sides, names)]),
        Section(f"Differences from {sides[0].tag}", [differences_block(sides, sentences)]),
    ]
    images = curve_images(sides, out_dir / FILES_FOLDER)
    if images:
        sections.append(Section("Curves", images))
    return Document(title, f"written {now:%Y-%m-%d %H:%M} by dlexp-compare", sections)


def print_summary(sides: list[Side], written: list[Path]) -> None:
    """The sides, the keys that differ, the headline metrics and their differences in words."""
    shown = [table_of(sides_table(sides), "Compared"), ""]
    config = config_table(sides)
    if isinstance(config, Text):
        shown.append(f"Config keys that differ: {config.text}")
    else:
        shown.append(table_of(config, "Config keys that differ"))
    headline = headline_metrics([s.group for s in sides])
    metrics = metrics_table(sides, headline)
    shown += ["", table_of(metrics, f"Metrics (mean ± {CONFIDENCE:.0%} CI, n)"), ""]
    shown += [text for _, _, text in differences(sides, headline)]
    show(*shown, "", *map(str, written))


def table_of(table: Table, title: str):
    return rich_table(table.header, table.rows, title)


def write_comparison(paths: list[Path], out: Path | None, now: datetime) -> tuple[list, list]:
    """compare.md, compare.html and compare_files/*.png in `out`; returns (sides, the two)."""
    sides = read_sides(paths)
    out = default_out(now) if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    doc = build_document(sides, out, now)
    markdown, page = out / "compare.md", out / "compare.html"
    markdown.write_text(to_markdown(doc, out))
    page.write_text(to_html(doc))
    return sides, [markdown, page]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="dlexp-compare",
        description=__doc__,
        epilog="Writes compare.md and a self-contained compare.html (images embedded, no "
        "network) into --out: the config keys that differ, the metrics side by side (mean ± "
        "95%% CI over seeds), each group's difference from the first with Welch's 95%% interval, "
        "in words, and the curves overlaid (each group's mean with a band of ± one sd).",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="RUN_OR_FOLDER")
    parser.add_argument("--out", type=Path, help="default: outputs/compare/<date>_<time>/")
    args = parser.parse_args(argv)
    try:
        sides, written = write_comparison(args.paths, args.out, datetime.now())
    except DlexpError as err:
        print(f"dlexp-compare: error: {err}", file=sys.stderr)
        sys.exit(2)
    print_summary(sides, written)


if __name__ == "__main__":
    main()
