"""dlexp's benchmark suite: `python -m benchmarks [--quick]` from the repository root.

The bare reference scripts (`naive_numpy_mlp.py`, `bare_torch_mlp.py`) and the older
single-purpose `bench_*.py` scripts live in this folder too; the scripts import each other as
top-level modules (`from bench_timing import time_ms`), so `import_script` puts the folder on
`sys.path` before importing one.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent


def import_script(name: str) -> ModuleType:
    """Import `benchmarks/<name>.py` the way it imports its siblings: as a top-level module."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    return importlib.import_module(name)
