"""What a user sees in a real browser: TensorBoard's Time Series, Scalars and HParams pages for
a fresh tiny sweep, and the sweep's report.html, in headless Chromium (Debian's package).

The browser code is scripts/tensorboard_browser.py, shared with scripts/screenshot_dashboards.py
and loaded by path in tests/browser_session.py (scripts/ is no package, and dlexp itself never
needs a browser).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser_session import tb_browser

pytestmark = pytest.mark.browser


# Tables whose right edge is out of reach: past the window, or past a box that does not scroll.
CLIPPED_TABLES = """() => Array.from(document.querySelectorAll("table")).filter(table => {
    const right = table.getBoundingClientRect().right;
    for (let box = table.parentElement; box && box !== document.body; box = box.parentElement) {
        const overflow = getComputedStyle(box).overflowX;
        if (overflow === "auto" || overflow === "scroll") return false;  // the box scrolls
        if (overflow !== "visible" && right > box.getBoundingClientRect().right) return true;
    }
    return right > document.documentElement.clientWidth;
}).map(table => table.querySelector("th").innerText)"""
SWEPT = ("optim.lr", "model.n_hidden")  # the two keys the sweep below varies
TAGS = ("train/loss", "train/accuracy", "val/loss", "val/accuracy")
N_JOBS = 4


@pytest.fixture(scope="module")
def sweep(browser, tiny_cifar, tmp_path_factory) -> Path:
    """A 2 x 2 grid over the tiny data through the real CLI: 10 steps a job, in an `outputs/`
    folder as a user's sweeps are (TensorBoard is opened on that folder)."""
    sweep = tmp_path_factory.mktemp("browser") / "outputs" / "torch_mlp" / "multiruns" / "sweep"
    command = [sys.executable, "-m", "dlexp", "-m", "model=torch_mlp"]
    command += ["optim.lr=1e-3,2e-3", "model.n_hidden=[8],[16]"]
    command += ["max_steps=10", "eval_freq=5", "batch_size=20", "data.validation_size=50"]
    command += [f"data.root={tiny_cifar}", "progress=false", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name, lr in (("single_a", "1e-3"), ("single_b", "3e-3")):  # two single runs beside it
        run = sweep.parents[1] / "runs" / name
        single = [
            c for c in command if c not in ("-m", "optim.lr=1e-3,2e-3", "model.n_hidden=[8],[16]")
        ]
        single = [c for c in single if not c.startswith("hydra.sweep.dir=")]
        single += [f"optim.lr={lr}", f"hydra.run.dir={run}"]
        proc = subprocess.run(single, capture_output=True, text=True, timeout=300, env=os.environ)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return sweep


@pytest.fixture(scope="module")
def job_names(sweep) -> list[str]:
    """Run names as `tensorboard --logdir outputs` gives them: `torch_mlp/multiruns/sweep/0_...`."""
    outputs = sweep.parents[2]
    jobs = [p for p in sweep.iterdir() if p.is_dir() and any(p.glob("events.*"))]
    names = sorted(p.relative_to(outputs).as_posix() for p in jobs)
    assert len(names) == N_JOBS, names
    return names


@pytest.fixture(scope="module")
def tensorboard(sweep, job_names):
    with tb_browser.serve_tensorboard(sweep.parents[2], n_runs=len(job_names) + 2) as base:
        yield base


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport=tb_browser.VIEWPORT)
    yield page
    page.close()


def _assert_tags_and_runs(page, dashboard: str, job_names: list[str]) -> None:
    for name in job_names:  # the runs selector lists every job folder
        assert tb_browser.shows_text(page, name), f"{dashboard}: run {name} not shown"
    tb_browser.filter_tags(page, "^(train|val)/(loss|accuracy)$")
    missing = [tag for tag in TAGS if not tb_browser.shows_card(page, tag)]
    assert not missing, f"{dashboard}: no card titled {missing}"


def test_time_series_shows_the_scalar_tags_and_every_run(page, tensorboard, job_names):
    tb_browser.open_dashboard(page, tensorboard, "timeseries")
    _assert_tags_and_runs(page, "Time Series", job_names)


def test_scalars_shows_the_scalar_tags_and_every_run(page, tensorboard, job_names):
    tb_browser.open_dashboard(page, tensorboard, "scalars")
    _assert_tags_and_runs(page, "Scalars", job_names)


def _first_card_titles(page, cards: str, n: int) -> list[str]:
    visible = page.locator(cards).locator("visible=true")
    visible.nth(n - 1).wait_for(state="visible", timeout=20_000)
    # each card's title first, split over lines
    return [re.sub(r"\s+", "", visible.nth(i).inner_text()) for i in range(n)]


def test_the_first_two_cards_are_loss_or_accuracy_curves(page, tensorboard):
    """On outputs/ with a sweep and two single runs: not ten one-point class-accuracy cards
    ahead of the curves (issue 23, item 1)."""
    dashboard = "timeseries"  # Scalars sorts its sections by the same tag names
    tb_browser.open_dashboard(page, tensorboard, dashboard)
    for title in _first_card_titles(page, "card-view", 2):
        curve = re.match(r"(train|val|test)/(loss|accuracy)(?![a-z_/])", title)
        assert curve, f"{dashboard}: a first card reads {title[:80]!r}"


def test_hparams_trial_ids_are_run_names_under_outputs(page, tensorboard, job_names):
    table = tb_browser.hparams_table(page, tensorboard)
    for name in job_names:  # `torch_mlp/multiruns/sweep/0_...`: no machine path before it
        assert tb_browser.shows_text(table, name, timeout_ms=5000), (
            f"no Trial ID {name}: {tb_browser.table_texts(table)[:12]}"
        )
    assert not [t for t in tb_browser.table_texts(table) if t.startswith("/")]


def test_hparams_table_shows_the_swept_hparams_as_columns(page, tensorboard, job_names):
    table = tb_browser.hparams_table(page, tensorboard)
    # TensorBoard ticks only the first five hparams as columns; a user must see the swept ones
    hidden = [key for key in SWEPT if not tb_browser.shows_text(table, key, timeout_ms=3000)]
    shown = tb_browser.table_texts(table)
    assert not hidden, f"HParams table view: no column {hidden}; its cells: {shown[:12]}"
    assert tb_browser.shows_text(table, "test/accuracy"), f"no metric column: {shown[:12]}"


def test_hparams_columns_start_with_the_keys_that_differ(tensorboard):
    """TensorBoard's own answer for outputs/ (the sweep and two single runs beside it): the keys
    whose values differ between runs lead, whichever run TensorBoard happened to read first."""
    infos = tb_browser.hparams_experiment(tensorboard)["hparamInfos"]
    first = [info["name"] for info in infos[:5]]
    assert set(SWEPT) <= set(first), first
    assert all(info.get("differs") for info in infos[: first.index("trial") + 1]), infos[:5]
    metrics = [
        info["name"]["tag"] for info in tb_browser.hparams_experiment(tensorboard)["metricInfos"]
    ]
    assert set(TAGS) <= set(metrics), metrics  # val/* too, to tick in the left pane


def test_report_html_shows_the_runs_table_and_its_images(page, sweep, job_names):
    report_cli = Path(sys.executable).with_name("dlexp-report")
    if importlib.util.find_spec("dlexp.report.cli") is None or not report_cli.exists():
        pytest.skip("dlexp-report is not installed yet (dlexp.report.cli)")
    proc = subprocess.run(
        [str(report_cli), str(sweep)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    page.goto((sweep / "report.html").as_uri())

    headers = [h.strip() for h in page.locator("table th").all_inner_texts()]
    assert headers, "report.html shows no table"
    for key in SWEPT:  # a column per swept key, under its full or its last dotted name
        assert key in headers or key.rsplit(".", 1)[-1] in headers, (key, headers)
    assert any("val/accuracy" in h for h in headers), headers
    body = page.locator("body").inner_text()
    assert all(tag in body for tag in TAGS), "report.html lacks a scalar tag"

    images = tb_browser.images_loaded(page)
    assert images, "report.html shows no image"
    page.set_viewport_size({"width": 1280, "height": 900})
    clipped = page.evaluate(CLIPPED_TABLES)
    assert not clipped, f"at 1280 px these tables are cut off on the right: {clipped}"
    broken = [image["src"] for image in images if not image["decoded"]]
    assert not broken, f"{len(broken)} of {len(images)} images did not decode: {broken}"
