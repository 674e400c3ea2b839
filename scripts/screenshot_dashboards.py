"""Screenshots of a sweep as a user sees it: TensorBoard's HParams table view and Time Series
page, and the sweep's report.html, in headless Chromium (Debian's `chromium` + Playwright).

    python scripts/screenshot_dashboards.py outputs/torch_mlp/multiruns/<sweep> --out docs/img

Writes hparams_table.png, time_series.png and report.png into --out. A sweep without a
report.html gets one from `dlexp-report` first.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from tensorboard_browser import (
    VIEWPORT,
    filter_tags,
    hparams_table,
    launch_chromium,
    missing_browser,
    open_dashboard,
    serve_tensorboard,
    shows_text,
)

MAIN_TAGS = "^(train|val)/(loss|accuracy)$"  # the Time Series cards worth a picture
REPORT_HEIGHT = 1800  # pixels of report.html to keep: the title, runs table and first curves
SETTLE_MS = 3000  # charts draw after their data arrives


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="a sweep folder (or one run's folder)")
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="default: docs/img")
    parser.add_argument(
        "--tags", default=MAIN_TAGS, help=f"Time Series filter (default {MAIN_TAGS})"
    )
    parser.add_argument("--report-height", type=int, default=REPORT_HEIGHT, help="pixels")
    return parser.parse_args(argv)


def fail(message: str, code: int) -> None:
    print(f"screenshot_dashboards: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_folders(sweep: Path) -> list[Path]:
    """The folders under `sweep` (itself included) that hold TensorBoard event files."""
    return sorted({p.parent for p in sweep.rglob("events.out.tfevents.*")})


def ensure_report(sweep: Path) -> Path:
    """The sweep's report.html, written by dlexp-report when it is missing."""
    report = sweep / "report.html"
    if not report.is_file():
        cli = Path(sys.executable).with_name("dlexp-report")
        cli = str(cli) if cli.exists() else shutil.which("dlexp-report")
        if cli is None:
            fail(f"{report} is missing and dlexp-report is not installed", 1)
        proc = subprocess.run([cli, str(sweep)], capture_output=True, text=True)
        if proc.returncode != 0 or not report.is_file():
            last = (proc.stderr.strip().splitlines() or ["no report.html written"])[-1]
            fail(f"dlexp-report {sweep}: {last}", 1)
    return report


def shoot_tensorboard(browser, base: str, out: Path, tags: str) -> list[Path]:
    page = browser.new_page(viewport=VIEWPORT)
    hparams_table(page, base)
    page.wait_for_timeout(SETTLE_MS)
    page.screenshot(path=out / "hparams_table.png")

    open_dashboard(page, base, "timeseries")
    shows_text(page, "Run")
    if shows_text(page, "Horizontal Axis", timeout_ms=2000):  # the settings pane takes room
        page.get_by_role("button", name="Toggle settings side pane").click()
    filter_tags(page, tags)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(SETTLE_MS)
    page.screenshot(path=out / "time_series.png")
    page.close()
    return [out / "hparams_table.png", out / "time_series.png"]


def shoot_report(browser, report: Path, out: Path, height: int) -> Path:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(report.resolve().as_uri())
    page.wait_for_load_state("load")  # base64 images decoded
    size = page.evaluate("() => [document.body.scrollWidth, document.body.scrollHeight]")
    clip = {"x": 0, "y": 0, "width": size[0], "height": min(height, size[1])}
    page.screenshot(path=out / "report.png", full_page=True, clip=clip)
    page.close()
    return out / "report.png"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sweep = args.sweep
    if not sweep.is_dir():
        fail(f"{sweep} is not a folder", 2)
    runs = run_folders(sweep)
    if not runs:
        fail(f"{sweep} holds no TensorBoard event files", 2)
    reason = missing_browser()
    if reason:
        fail(reason, 1)
    report = ensure_report(sweep)
    args.out.mkdir(parents=True, exist_ok=True)

    try:
        written = shoot_all(sweep, len(runs), report, args)
    except Exception as err:  # TensorBoard or Chromium failing: their first line is the news
        fail(f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}", 1)
    for path in written:
        print(path)


def shoot_all(sweep: Path, n_runs: int, report: Path, args: argparse.Namespace) -> list[Path]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, serve_tensorboard(sweep, n_runs=n_runs) as base:
        browser = launch_chromium(playwright)
        written = shoot_tensorboard(browser, base, args.out, args.tags)
        written.append(shoot_report(browser, report, args.out, args.report_height))
        browser.close()
    return written


if __name__ == "__main__":
    main()
