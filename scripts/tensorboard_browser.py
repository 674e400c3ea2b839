"""Headless Chromium against a live TensorBoard: shared by tests/test_browser.py and
scripts/screenshot_dashboards.py (neither dlexp nor its users need a browser).

Chromium is Debian's `chromium` package, driven by Playwright through `executable_path`
(Playwright's own browser download is never used). Playwright's CSS and text locators pierce
open shadow roots, which is where TensorBoard's Polymer dashboards (Scalars, HParams) live.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TENSORBOARD_START_S = 60  # TensorBoard prints its URL within this many seconds, or we give up
VIEWPORT = {"width": 1400, "height": 900}  # pixels
URL_LINE = re.compile(r"TensorBoard \S+ at (http://\S+) ")


def find_chromium() -> str | None:
    """$DLEXP_CHROMIUM, else the first Chromium on PATH."""
    configured = os.environ.get("DLEXP_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def missing_browser() -> str | None:
    """Why a headless Chromium cannot be driven here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -e '.[dev]')"
    configured = os.environ.get("DLEXP_CHROMIUM")
    if configured and find_chromium() is None:
        return f"$DLEXP_CHROMIUM={configured} is not a file"
    if find_chromium() is None:
        return "no Chromium on PATH (apt-get install chromium)"
    return None


def launch_chromium(playwright):
    """Headless Debian Chromium; no sandbox as root (containers), /tmp instead of a small
    /dev/shm."""
    args = ["--disable-dev-shm-usage"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run sandboxed as root
    return playwright.chromium.launch(executable_path=find_chromium(), headless=True, args=args)


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def hparams_experiment(base: str) -> dict:
    """TensorBoard's own HParams experiment (columns and metrics) over its whole logdir, as the
    HParams dashboard asks for it."""
    body = json.dumps({"experimentName": "", "includeMetrics": True}).encode()
    url = f"{base}data/plugin/hparams/experiment"
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_until_loaded(base: str, n_runs: int, timeout_s: float = TENSORBOARD_START_S) -> None:
    """Block until TensorBoard lists `n_runs` runs and its HParams plugin is active: its
    loader reads the logdir in the background, after the server already answers."""
    deadline = time.monotonic() + timeout_s
    runs, plugins = [], {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # URLError included: not answering yet
            runs = _get_json(f"{base}data/runs")
            plugins = _get_json(f"{base}data/plugins_listing")
        if len(runs) >= n_runs and plugins.get("hparams", {}).get("enabled"):
            return
        time.sleep(0.5)
    listed = f"{len(runs)} of {n_runs} runs"
    raise TimeoutError(f"TensorBoard at {base} lists {listed} after {timeout_s}s")


@contextlib.contextmanager
def serve_tensorboard(logdir: Path, n_runs: int = 1) -> Iterator[str]:
    """TensorBoard on a free loopback port for the `with` block; yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="tensorboard-log-") as tmp:
        log_path = Path(tmp) / "tensorboard.log"
        with log_path.open("w") as log:
            command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
            command += ["--host", "127.0.0.1", "--port", "0"]  # port 0: the OS picks a free one
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = _wait_for_url(proc, log_path)
            wait_until_loaded(base, n_runs)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_url(proc: subprocess.Popen, log_path: Path) -> str:
    """The URL TensorBoard prints once it serves, read from its log."""
    deadline = time.monotonic() + TENSORBOARD_START_S
    while time.monotonic() < deadline:
        match = URL_LINE.search(log_path.read_text())
        if match:
            return match.group(1).rstrip("/") + "/"
        if proc.poll() is not None:
            tail = log_path.read_text().strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"TensorBoard exited with {proc.returncode}: {tail[0]}")
        time.sleep(0.2)
    raise TimeoutError(f"TensorBoard printed no URL within {TENSORBOARD_START_S}s")


def open_dashboard(page, base: str, name: str) -> None:
    """Open one dashboard: timeseries, scalars, images or hparams."""
    page.goto(f"{base}#{name}")


def filter_tags(page, regex: str) -> None:
    """Type into the visible "Filter tags" box (an Angular input on Time Series, a Polymer
    paper-input labelled so on Scalars)."""
    box = page.locator('input[placeholder*="Filter tags"]').or_(
        page.get_by_role("textbox", name=re.compile("Filter tags"))
    )
    box.locator("visible=true").first.fill(regex)
    page.keyboard.press("Escape")  # close Time Series' autocomplete list of matching tags


def shows_card(page, tag: str, timeout_ms: float = 10_000) -> bool:
    """Whether a chart card titled `tag` becomes visible (Time Series or Scalars)."""
    return shows_text(page.locator("card-view, tf-scalar-card"), tag, timeout_ms)


def shows_text(scope, text: str, timeout_ms: float = 10_000) -> bool:
    """Whether an element whose whole text is `text` becomes visible within `scope`."""
    visible = scope.get_by_text(text, exact=True).locator("visible=true").first
    try:
        visible.wait_for(state="visible", timeout=timeout_ms)
    except Exception:  # Playwright's TimeoutError; imported lazily with Playwright itself
        return False
    return True


def hparams_table(page, base: str):
    """The HParams dashboard's table view, once it shows its header row."""
    open_dashboard(page, base, "hparams")
    table = page.locator("tf-hparams-table-view").locator("visible=true").first
    shows_text(table, "Trial ID", timeout_ms=20_000)
    return table


def table_texts(table) -> list[str]:
    """The visible cell texts of the HParams table view (its headers come first)."""
    cells = table.locator("vaadin-grid-cell-content").locator("visible=true")
    return [text.strip() for text in cells.all_inner_texts() if text.strip()]


def images_loaded(page) -> list[dict]:
    """Every <img> of the page: its src's start and whether it decoded (naturalWidth > 0)."""
    return page.evaluate(
        """() => Array.from(document.images, img => ({
            src: img.src.slice(0, 40), decoded: img.complete && img.naturalWidth > 0}))"""
    )
