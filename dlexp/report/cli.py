"""`dlexp-report RUN_OR_SWEEP`: report.md and a self-contained report.html in that folder."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from dlexp.errors import DlexpError
from dlexp.report.collect import read_folder
from dlexp.report.figures import curve_figures, group_curve_figures, scatter_figures
from dlexp.report.render import to_html, to_markdown
from dlexp.report.sections import build_document
from dlexp.run.loggers import MLflowLogger

FILES_FOLDER = "report_files"  # the PNGs report.md links to, next to it


def write_report(folder: Path, now: datetime | None = None) -> list[Path]:
    """report.md, report.html and report_files/*.png in `folder`; returns the two reports."""
    report = read_folder(folder)
    files = folder / FILES_FOLDER
    files.mkdir(exist_ok=True)
    for old in files.glob("*.png"):  # an earlier report's: a sweep that has grown since differs
        old.unlink()
    curves = curve_figures(report, files)
    scatters = scatter_figures(report, files) if report.is_sweep else []
    group_curves = group_curve_figures(report, files) if report.is_sweep else []
    doc = build_document(report, curves, scatters, now or datetime.now(), group_curves)
    markdown, page = folder / "report.md", folder / "report.html"
    markdown.write_text(to_markdown(doc, folder))
    page.write_text(to_html(doc))
    if not report.is_sweep:  # a run logged to MLflow (logger=mlflow) gets its report there too
        MLflowLogger.upload_run_files(folder)
    return [markdown, page]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="dlexp-report",
        description=__doc__,
        epilog="A run's report: command and overrides, final and best metrics, curves, timing "
        "and device, the resolved config. A sweep's or search's adds every job sorted by the "
        "selection metric (failed and pruned ones included), the seed groups (runs alike but for "
        "their seed: mean, sd and 95%% CI, and mean curves), the top runs' val curves, "
        f"parameter-against-metric plots and the best config. The PNGs go in {FILES_FOLDER}/; "
        "report.html embeds them and loads nothing from the network.",
    )
    parser.add_argument("folder", type=Path, help="a run folder or a sweep folder")
    args = parser.parse_args(argv)
    try:
        written = write_report(args.folder)
    except DlexpError as err:
        print(f"dlexp-report: error: {err}", file=sys.stderr)
        sys.exit(2)
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
