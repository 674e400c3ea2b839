"""DESIGN.md's layering, checked by importing each library in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dlexp.search import PLUGIN_MODULE

FACE_AND_LOOP = ("hydra", "omegaconf", "tensorboard", "dlexp.train", "dlexp.loop",
                 "dlexp.backends", "dlexp.config.checks", "dlexp.build", "dlexp.cli",
                 "dlexp.config.arguments", "dlexp.config.schema")  # fmt: skip
LIBRARIES = {  # library: what it must not load, beyond the face and the loop
    "dlexp.numpy_nn": ("torch",),
    "dlexp.data": ("torch",),
    "dlexp.models": ("torch",),  # torch models load on first use, not on import
    "dlexp.nn": (),
}


def loaded_after_import(module: str, candidates: tuple[str, ...]) -> list[str]:
    code = (
        f"import json, sys, {module}; "
        f"print(json.dumps([m for m in {list(candidates)!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("library", LIBRARIES)
def test_libraries_import_nothing_above_them(library):
    assert loaded_after_import(library, FACE_AND_LOOP + LIBRARIES[library]) == []


def test_the_config_check_runs_before_torch_loads():
    assert loaded_after_import("dlexp.config.checks", ("torch",)) == []


@pytest.mark.parametrize("entry", ["dlexp.train", "dlexp.evaluate", "dlexp.report.plot"])
def test_commands_import_no_sweeper_before_hydra_scans_its_plugins(entry):
    """Hydra's first plugin scan re-executes BasicSweeper's module; a sweeper subclassed before
    it breaks (tests/conftest.py scans first for the in-process tests, which would hide it)."""
    sweepers = ("dlexp.search.grid_sweeper", "dlexp.search.optuna_sweeper", PLUGIN_MODULE)
    assert loaded_after_import(entry, sweepers) == []
