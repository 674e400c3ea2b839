"""`dlexp-plot RUN_DIR|SWEEP_DIR ...`: accuracy and loss curves from TensorBoard event files.

One PNG per metric. Each run has a colour and the legend names only the overrides that differ
between runs; the overrides all runs share go in the title. Each split has a line style, explained
once in a small second legend. Series with few points are drawn with markers, so a split that was
evaluated once still shows. dlexp-report draws its curves with the same functions.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import textwrap
from pathlib import Path

from dlexp.errors import DlexpError
from dlexp.overrides import override_key
from dlexp.run.folder import read_overrides

SPLIT_STYLES = {"train": ":", "val": "--", "test": "-"}
METRICS = ("accuracy", "loss")
FEW_POINTS = 12  # a series with at most this many points gets a marker on each point

Curves = dict[str, tuple[list[int], list[float]]]  # tag ("val/loss") -> (steps, values)


def expand_runs(paths: list[Path]) -> list[Path]:
    """Run folders among `paths`; a sweep folder stands for its job folders."""
    runs = []
    for path in paths:
        if not path.is_dir():
            raise DlexpError(f"{path} is not a folder")
        if any(path.glob("events.out.tfevents.*")):
            runs.append(path)
            continue
        jobs = sorted({p.parent for p in path.glob("*/events.out.tfevents.*")})
        if not jobs:
            raise DlexpError(f"{path} holds no TensorBoard event files (neither a run nor a sweep)")
        runs.extend(jobs)
    return runs


def override_items(run: Path) -> dict[str, str]:
    """The run's overrides (plumbing left out) as key -> value: `optim.lr` -> `0.001`."""
    items = {}
    for override in read_overrides(run):
        items[override_key(override)] = override.partition("=")[2]
    return items


def differing_keys(runs: list[Path]) -> list[str]:
    """Override keys whose value differs between runs (absent counts), in first-seen order."""
    items = [override_items(run) for run in runs]
    keys = list(dict.fromkeys(k for run_items in items for k in run_items))
    return [k for k in keys if len({run_items.get(k) for run_items in items}) > 1]


def short_names(keys: list[str]) -> dict[str, str]:
    """`optim.lr` -> `lr`, unless two keys end alike (then both keep their full name)."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def run_labels(runs: list[Path]) -> dict[Path, str]:
    """A legend label per run naming only what differs (`lr=0.001 n_hidden=[100]`); runs that
    differ in nothing they were told are named by folder."""
    keys = differing_keys(runs)
    names = short_names(keys)
    labels = {}
    for run in runs:
        items = override_items(run)
        labels[run] = " ".join(f"{names[k]}={items.get(k, '(default)')}" for k in keys)
    if len(set(labels.values())) < len(runs):
        return {run: run.name for run in runs}
    return labels


def shared_overrides(runs: list[Path]) -> str:
    """The overrides every run has in common, for a title."""
    varying = set(differing_keys(runs))
    items = override_items(runs[0])
    return " ".join(f"{k}={v}" for k, v in items.items() if k not in varying)


def read_curves(run: Path) -> Curves:
    """tag -> (steps, values) for every scalar in the run's event files."""
    # tensorboard's event reader takes a second to import: only when curves are read
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    # A resumed run rewrites the steps after its checkpoint: TensorBoard drops the old points, as
    # meant, but warns "Detected out of order event.step ... Purging expired events".
    with quiet_logger("tensorboard", logging.ERROR):
        acc.Reload()
    return {
        tag: ([e.step for e in acc.Scalars(tag)], [e.value for e in acc.Scalars(tag)])
        for tag in acc.Tags()["scalars"]
    }


@contextlib.contextmanager
def quiet_logger(name: str, level: int):
    """Within the block, the library logger `name` passes only records at `level` and above."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib  # matplotlib, here and below: only when a figure is drawn

    matplotlib.use("Agg")
    # the first import builds matplotlib's font cache and says so ("generated new fontManager")
    with quiet_logger("matplotlib.font_manager", logging.WARNING):
        import matplotlib.pyplot as plt  # (as above: after use("Agg"))

    return plt


def run_color(index: int, count: int):
    """Ten distinct colours; more runs than that share a colour map."""
    return f"C{index}" if count <= 10 else pyplot().cm.viridis(index / (count - 1))


def curves_figure(
    curves: dict[Path, Curves], labels: dict[Path, str], metric: str, splits, title: str
):
    """One metric's figure: a colour per run, a line style per split, two legends outside."""
    from matplotlib.lines import Line2D  # (as pyplot)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    runs, drawn = list(curves), set()
    for index, run in enumerate(runs):
        for split in splits:
            steps, values = curves[run].get(f"{split}/{metric}", ([], []))
            if steps:
                marker = "o" if len(steps) <= FEW_POINTS else None
                color = run_color(index, len(runs))
                ax.plot(steps, values, SPLIT_STYLES[split], color=color, marker=marker, ms=3)
                drawn.add(split)
    ax.set(xlabel="step", ylabel=metric)
    ax.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=9)
    ax.grid(alpha=0.3)
    legend_style = {"fontsize": 8, "title_fontsize": 8, "bbox_to_anchor": (1.02, 1.0)}
    if len(runs) > 1:
        run_handles = [
            Line2D([], [], color=run_color(i, len(runs)), label=labels[run])
            for i, run in enumerate(runs)
        ]
        ax.add_artist(ax.legend(handles=run_handles, title="run", loc="upper left", **legend_style))
        legend_style["bbox_to_anchor"] = (1.02, 0.0)
    add_split_legend(ax, splits, drawn, "lower left" if len(runs) > 1 else "upper left",
                     legend_style)  # fmt: skip
    return fig


def add_split_legend(ax, splits, drawn: set, loc: str, style: dict) -> None:
    """The legend of the line styles, one per split that was drawn (none when none was)."""
    from matplotlib.lines import Line2D  # matplotlib: only when a figure is drawn

    handles = [
        Line2D([], [], color="0.3", linestyle=SPLIT_STYLES[s], label=s)
        for s in splits
        if s in drawn
    ]
    if handles:
        ax.legend(handles=handles, title="split", loc=loc, **style)


def plot_runs(
    runs: list[Path], out_dir: Path, splits=tuple(SPLIT_STYLES), prefix: str = ""
) -> dict[Path, int]:
    """`<prefix><metric>.png` per metric with the runs' curves; returns PNG -> series count."""
    from matplotlib.legend import Legend  # (as pyplot)

    plt = pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = {run: read_curves(run) for run in runs}
    labels = run_labels(runs)
    common = shared_overrides(runs) or (runs[0].name if len(runs) == 1 else "")
    written = {}
    for metric in METRICS:
        fig = curves_figure(curves, labels, metric, splits, f"{metric}: {common}".rstrip(": "))
        png = out_dir / f"{prefix}{metric}.png"
        # the same runs give the same bytes: Agg draws deterministically, PNGs carry no date
        legends = [a for a in fig.axes[0].get_children() if isinstance(a, Legend)]
        fig.savefig(png, dpi=110, bbox_inches="tight", bbox_extra_artists=legends)
        written[png] = len(fig.axes[0].get_lines())
        plt.close(fig)
    return written


def plots_folder(paths: list[Path], out: Path | None) -> Path:
    """--out, else `plots/` inside the one folder given; several folders need --out."""
    if out is not None:
        return out
    if len(paths) > 1:
        raise DlexpError("several folders given: say where the plots go with --out")
    return paths[0] / "plots"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="dlexp-plot",
        description=__doc__.split("\n\n")[0],
        epilog="Output: accuracy.png and loss.png in RUN_OR_SWEEP/plots/ when one folder is "
        "given (a sweep's plots go in the sweep folder); with several folders --out is required. "
        "Running again rewrites the same files with the same content.",
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run folders or sweep folders")
    parser.add_argument("--out", type=Path, help="the folder to write the PNGs to")
    args = parser.parse_args(argv)
    try:
        runs = expand_runs(args.runs)
        written = plot_runs(runs, plots_folder(args.runs, args.out))
    except DlexpError as err:
        print(f"dlexp-plot: error: {err}", file=sys.stderr)
        sys.exit(2)
    for png, series in written.items():
        print(f"{png} ({series} curves)")


if __name__ == "__main__":
    main()
