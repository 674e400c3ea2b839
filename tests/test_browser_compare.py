"""compare.html in a real browser: headless Chromium (Debian's package) opens dlexp-compare's page
of two seed groups, and every image decodes. The browser code is scripts/tensorboard_browser.py,
loaded by path in tests/browser_session.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlexp.report.compare_cli import main
from tests.browser_session import tb_browser
from tests.hand_made_runs import completed, rising_curves, write_run

pytestmark = pytest.mark.browser


@pytest.fixture
def compare_html(tmp_path, capsys) -> Path:
    """dlexp-compare of sgd against adam, three seeds each, with curves."""
    rng = np.random.default_rng(1)
    for name in ("sgd", "adam"):
        for seed in (1, 2, 3):
            test = rng.uniform(0.40, 0.45) + (0.03 if name == "adam" else 0.0)
            write_run(tmp_path / name / str(seed), seed, {"optim.name": name},
                      completed(test, test), curves=rising_curves(rng, test))  # fmt: skip
    main([str(tmp_path / "sgd"), str(tmp_path / "adam"), "--out", str(tmp_path / "cmp")])
    capsys.readouterr()
    return tmp_path / "cmp" / "compare.html"


def test_compare_html_shows_its_tables_and_every_image_decodes(browser, compare_html):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(compare_html.as_uri())
        headings = page.locator("h2").all_inner_texts()
        assert headings == ["Compared", "Config keys that differ", "Metrics side by side",
                            "Differences from A", "Curves"]  # fmt: skip
        body = page.locator("body").inner_text()
        assert "optim.name" in body and "adam" in body and "n = 3 each" in body
        images = tb_browser.images_loaded(page)
        assert len(images) == 2, images
        broken = [image["src"] for image in images if not image["decoded"]]
        assert not broken, f"{len(broken)} of {len(images)} images did not decode: {broken}"
        sizes = page.evaluate("() => Array.from(document.images, i => i.naturalWidth)")
        assert all(width > 300 for width in sizes), sizes
    finally:
        page.close()
