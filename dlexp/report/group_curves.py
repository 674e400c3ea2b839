"""Curves of seed groups, for dlexp-report and dlexp-compare: each group's mean over its runs
with a band of ± one standard deviation; a group of one run is its plain curve."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import numpy as np

from dlexp.report.plot import (
    FEW_POINTS,
    METRICS,
    SPLIT_STYLES,
    Curves,
    add_split_legend,
    pyplot,
    read_curves,
    run_color,
)

CSV_FILE = "metrics.csv"  # logger=csv's `step,tag,value` rows
BAND_ALPHA = 0.18
GroupCurves = tuple[str, list[Curves]]  # (label, one Curves per run)
MeanCurve = tuple[np.ndarray, np.ndarray, np.ndarray | None]  # steps, mean, sd (None for n = 1)


def run_curves(run: Path) -> Curves:
    """The run's scalars from its TensorBoard event files, else from its metrics.csv."""
    if any(run.glob("events.out.tfevents.*")):
        return read_curves(run)
    curves: Curves = {}
    if (run / CSV_FILE).is_file():
        with (run / CSV_FILE).open(newline="") as f:
            for row in csv.DictReader(f):
                steps, values = curves.setdefault(row["tag"], ([], []))
                steps.append(int(row["step"]))
                values.append(float(row["value"]))
    return curves


def mean_curve(runs: list[Curves], tag: str) -> MeanCurve | None:
    """The mean (and sd, ddof 1) over the runs at the steps every run logged `tag` at."""
    series = [dict(zip(*curves[tag], strict=True)) for curves in runs if tag in curves]
    if len(series) < len(runs) or not series:
        return None
    steps = sorted(set.intersection(*(set(s) for s in series)))
    if not steps:
        return None
    values = np.array([[s[step] for step in steps] for s in series], dtype=np.float64)
    sd = values.std(axis=0, ddof=1) if len(series) > 1 else None
    return np.array(steps), values.mean(axis=0), sd


def group_figure(groups: list[GroupCurves], metric: str, splits, title: str):
    """One metric: a colour per group, a line style per split, the band around each mean."""
    from matplotlib.lines import Line2D  # matplotlib: only when a figure is drawn

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = set()
    for index, (_, runs) in enumerate(groups):
        color = run_color(index, len(groups))
        for split in splits:
            curve = mean_curve(runs, f"{split}/{metric}")
            if curve is None:
                continue
            steps, mean, sd = curve
            marker = "o" if len(steps) <= FEW_POINTS else None
            ax.plot(steps, mean, SPLIT_STYLES[split], color=color, marker=marker, ms=3)
            if sd is not None:
                ax.fill_between(steps, mean - sd, mean + sd, color=color, alpha=BAND_ALPHA, lw=0)
            drawn.add(split)
    ax.set(xlabel="step", ylabel=metric)
    ax.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=9)
    ax.grid(alpha=0.3)
    style = {"fontsize": 8, "title_fontsize": 8, "bbox_to_anchor": (1.02, 1.0)}
    handles = [
        Line2D([], [], color=run_color(i, len(groups)), label=f"{label} (n={len(runs)})")
        for i, (label, runs) in enumerate(groups)
    ]
    ax.add_artist(ax.legend(handles=handles, title="group", loc="upper left", **style))
    style["bbox_to_anchor"] = (1.02, 0.0)
    add_split_legend(ax, splits, drawn, "lower left", style)
    return fig


def plot_groups(
    groups: list[tuple[str, list[Path]]], out_dir: Path, splits=tuple(SPLIT_STYLES), prefix=""
) -> list[tuple[Path, str]]:
    """`<prefix><metric>.png` per metric with each group's mean curves, of the `splits` that were
    logged (every split logged when none of them was); (PNG, caption) pairs."""
    from matplotlib.legend import Legend  # (as group_figure)

    plt = pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = [(label, [run_curves(run) for run in runs]) for label, runs in groups]
    tags = {tag for _, runs in curves for run in runs for tag in run}
    logged = [s for s in SPLIT_STYLES if any(t.startswith(f"{s}/") for t in tags)]
    splits = [s for s in splits if s in logged] or logged  # what was asked for, else all there is
    band = " with a band of ± one standard deviation" if any(len(r) > 1 for _, r in curves) else ""
    written = []
    for metric in METRICS:
        title = f"{metric}: mean over each group's seeds{band}"
        fig = group_figure(curves, metric, splits, title)
        png = out_dir / f"{prefix}{metric}.png"
        legends = [a for a in fig.axes[0].get_children() if isinstance(a, Legend)]
        fig.savefig(png, dpi=110, bbox_inches="tight", bbox_extra_artists=legends)
        plt.close(fig)
        written.append((png, f"{metric}: {', '.join(splits)}; mean over seeds{band}"))
    return written
