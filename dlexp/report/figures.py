"""The report's PNGs: curves (drawn by dlexp.report.plot) and parameter-against-metric plots."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from dlexp.report.collect import ReportInput, RunRecord
from dlexp.report.group_curves import CSV_FILE, plot_groups
from dlexp.report.plot import plot_runs, pyplot

TOP_RUNS = 5  # runs whose val curves a sweep report overlays
STATUS_MARKERS = {"pruned": "x", "early_stopped": "s"}  # every other status: a filled circle

SAFE_NAME = re.compile(r"[^\w.-]")  # what may not go into a file name
Figure = tuple[Path, str]  # (PNG, caption)


def curve_figures(report: ReportInput, out_dir: Path) -> list[Figure]:
    """A run's train/val/test curves; for a sweep, the top runs' val curves overlaid."""
    if not report.is_sweep:
        run = report.runs[0]
        if not run.has_curves:
            return []
        written = plot_runs([run.folder], out_dir)
        return [(png, f"{png.stem}: train, val and test") for png in written]
    top = [r.folder for r in report.runs if r.has_curves and r.value(report.metric) is not None]
    top = top[:TOP_RUNS]
    if not top:
        return []
    written = plot_runs(top, out_dir, splits=("val",), prefix="top_val_")
    caption = f"val curves of the top {len(top)} runs by {report.metric}"
    return [(png, f"{png.stem.removeprefix('top_val_')}: {caption}") for png in written]


def has_curves(run: Path) -> bool:
    return any(run.glob("events.out.tfevents.*")) or (run / CSV_FILE).is_file()


def group_curve_figures(report: ReportInput, out_dir: Path) -> list[Figure]:
    """The top seed groups' mean val curves with their bands, when some group has two runs."""
    if not any(len(g.members) > 1 for g in report.groups):
        return []
    groups = []
    for group in report.groups[:TOP_RUNS]:
        runs = [m.folder for m in group.finished if has_curves(m.folder)]
        if runs:
            groups.append((group.label, runs))
    if not groups:
        return []
    written = plot_groups(groups, out_dir, splits=("val",), prefix="groups_")
    caption = f"the top {len(groups)} seed groups by {report.metric}"
    if len(groups) == 1:
        caption = "the one seed group with curves"
    return [(png, f"{text}; {caption}") for png, text in written]


def parameter_axis(values: list[str]) -> tuple[list, list[str] | None]:
    """Numbers when every value reads as one; else category positions and their names."""
    try:
        return [float(v) for v in values], None
    except ValueError:
        names = sorted(set(values))
        return [names.index(v) for v in values], names


def scatter_figure(key: str, runs: list[RunRecord], metric: str):
    """The selection metric of each run that has one, against one swept parameter."""
    plt = pyplot()
    missing = Counter(r.status for r in runs if r.value(metric) is None)
    runs = [r for r in runs if r.value(metric) is not None]
    xs, names = parameter_axis([r.params.get(key, "(default)") for r in runs])
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for status in dict.fromkeys(r.status for r in runs):
        chosen = [i for i, r in enumerate(runs) if r.status == status]
        ax.scatter(
            [xs[i] for i in chosen],
            [runs[i].value(metric) for i in chosen],
            marker=STATUS_MARKERS.get(status, "o"),
            label=status,
            alpha=0.8,
        )
    if names is not None:
        ax.set_xticks(range(len(names)), names, rotation=20 if len(names) > 3 else 0)
        ax.set_xlim(-0.5, len(names) - 0.5)
    elif min(xs) > 0 and max(xs) / min(xs) >= 20:  # learning rates, weight decays
        ax.set_xscale("log")
    ax.set(xlabel=key, ylabel=metric)
    if missing:
        listed = ", ".join(f"{n} {status}" for status, n in missing.items())
        ax.set_title(f"not shown, having no {metric}: {listed}", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def scatter_figures(report: ReportInput, out_dir: Path) -> list[Figure]:
    """One PNG per swept parameter: its value against the selection metric."""
    plt = pyplot()
    written = []
    if not any(r.value(report.metric) is not None for r in report.runs):
        return written
    out_dir.mkdir(parents=True, exist_ok=True)
    for key in report.swept:
        fig = scatter_figure(key, report.runs, report.metric)
        png = out_dir / f"param_{SAFE_NAME.sub('_', key)}.png"
        fig.savefig(png, dpi=110)
        plt.close(fig)
        written.append((png, f"{report.metric} against {key}"))
    return written
