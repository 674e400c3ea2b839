"""scripts/tensorboard_browser.py for the browser tests, loaded by path: scripts/ is no package,
and dlexp itself never needs a browser (the `browser` fixture is in conftest.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

HELPER = Path(__file__).resolve().parents[1] / "scripts" / "tensorboard_browser.py"
_spec = importlib.util.spec_from_file_location("tensorboard_browser", HELPER)
tb_browser = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tb_browser)
