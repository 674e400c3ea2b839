"""DESIGN.md's layering, checked by importing each library in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FACE_AND_LOOP = ("hydra", "omegaconf", "tensorboard", "dlexp.train", "dlexp.loop",
                 "dlexp.backends", "dlexp.config_checks", "dlexp.build", "dlexp.cli",
                 "dlexp.arguments", "dlexp.config_schema")  # fmt: skip
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
    assert loaded_after_import("dlexp.config_checks", ("torch",)) == []
