"""`dlexp-plot RUN_DIR|SWEEP_DIR ...`: accuracy and loss curves from TensorBoard event files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlexp.errors import DlexpError
from dlexp.run_folder import read_overrides

SPLIT_STYLES = {"train": ":", "val": "--", "test": "-"}
METRICS = ("accuracy", "loss")


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


def run_label(run: Path) -> str:
    """The run's command-line overrides, else its folder name."""
    return " ".join(read_overrides(run)) or run.name


def read_curves(run: Path) -> dict[str, tuple[list[int], list[float]]]:
    """tag -> (steps, values) for every scalar in the run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return {
        tag: ([e.step for e in acc.Scalars(tag)], [e.value for e in acc.Scalars(tag)])
        for tag in acc.Tags()["scalars"]
    }


def plot_runs(runs: list[Path], out_dir: Path) -> dict[Path, int]:
    """One PNG per metric with every run's train/val/test curves; returns PNG -> series count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    curves = {run: read_curves(run) for run in runs}
    written = {}
    for metric in METRICS:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for color, run in enumerate(runs):
            for split, style in SPLIT_STYLES.items():
                tag = f"{split}/{metric}"
                if tag in curves[run]:
                    steps, values = curves[run][tag]
                    ax.plot(
                        steps,
                        values,
                        style,
                        color=f"C{color % 10}",
                        label=f"{split}: {run_label(run)}",
                    )
        ax.set(
            xlabel="step", ylabel=metric, title=f"{metric} (train dotted, val dashed, test solid)"
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        png = out_dir / f"{metric}.png"
        fig.tight_layout()
        fig.savefig(png, dpi=120)
        written[png] = len(ax.get_lines())
        plt.close(fig)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dlexp-plot", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders or sweep folders")
    parser.add_argument("--out", type=Path, default=Path("plots"), help="where to write the PNGs")
    args = parser.parse_args(argv)
    try:
        written = plot_runs(expand_runs(args.runs), args.out)
    except DlexpError as err:
        print(f"dlexp-plot: error: {err}", file=sys.stderr)
        sys.exit(2)
    for png, series in written.items():
        print(f"{png} ({series} curves)")


if __name__ == "__main__":
    main()
