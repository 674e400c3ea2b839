"""DESIGN.md's layering and the package's shape, checked on the source and in fresh interpreters.

Imports run one way, from the face (the commands) down to the libraries. A rule broken here is
a module in the wrong layer: move the code, do not add an exception.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import dlexp
from dlexp.search import PLUGIN_MODULE

PACKAGE = Path(dlexp.__file__).parent
MAX_TOP_LEVEL = 10  # .py files directly under dlexp/, __init__ and __main__ included

ENTRY_POINTS = {  # the commands: the only importers of dlexp.cli
    "dlexp.__main__", "dlexp.training", "dlexp.evaluate", "dlexp.report.cli", "dlexp.report.plot",
}  # fmt: skip
FACE = ("dlexp.cli", "dlexp.training", "dlexp.api")  # the commands' and Python's front doors
LIBRARIES = ("dlexp.numpy_nn", "dlexp.nn", "dlexp.models", "dlexp.data")
BESIDE_LIBRARIES = ("dlexp.errors", "dlexp.overrides")  # importable by all
SWEEPERS = ("dlexp.search.grid_sweeper", "dlexp.search.optuna_sweeper", "dlexp.search.hydra_plugin")
# Function-local imports keep a heavy import off a path that does not need it; nothing else.
HEAVY = (
    "torch",
    "safetensors.torch",
    "matplotlib",
    "PIL",
    "optuna",
    "mlflow",
    "tensorboard",
    "sqlalchemy",
    "scipy",
)
LAZY_DLEXP = (  # dlexp modules imported late on purpose
    "dlexp.run.final_figures",  # matplotlib: only at a run's end
    "dlexp.search.trial_report",  # Optuna: only in a search's trials
    "dlexp.run.tensorboard",  # TensorBoard's protobufs: when a run opens its loggers, not a check
    "dlexp.training",  # by the course's scripts (dlexp.compat), so that their --help stays fast
)
PRIVATE_APIS = ("_storage", "_study_id", "_trial_id")  # Optuna's private attributes


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def imports(path: Path) -> list[tuple[str, ast.stmt]]:
    """(module, node) for each import in the file: `from a.b import c` gives a.b and a.b.c."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node))
            found += [(f"{node.module}.{alias.name}", node) for alias in node.names]
    return found


def dlexp_imports(module: str) -> set[str]:
    return {name for name, _ in imports(SOURCES[module]) if name in SOURCES}


def within(module: str, packages) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def within_any(module: str, package: str) -> bool:
    """Whether the module imports anything in `package`."""
    return any(within(target, (package,)) for target in dlexp_imports(module))


def test_at_most_ten_modules_sit_directly_under_dlexp():
    top_level = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top_level) <= MAX_TOP_LEVEL, top_level


def offenders(importers, forbidden) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module in SOURCES
        if within(module, importers) or module in importers
        for target in dlexp_imports(module)
        if within(target, forbidden)
    )


def test_run_and_the_libraries_never_import_the_face_or_search():
    below = ("dlexp.run", "dlexp.config", "dlexp.backends", "dlexp.build", "dlexp.loop")
    assert offenders((*below, *LIBRARIES, *BESIDE_LIBRARIES), FACE) == []
    assert offenders((*below, *LIBRARIES, *BESIDE_LIBRARIES), ("dlexp.search",)) == []
    assert offenders(("dlexp.run", *LIBRARIES, *BESIDE_LIBRARIES), ("dlexp.report",)) == []


def test_the_libraries_import_only_libraries_and_what_sits_beside_them():
    allowed = (*LIBRARIES, *BESIDE_LIBRARIES)
    bad = [
        f"{module} imports {target}"
        for module in SOURCES
        if within(module, (*LIBRARIES, *BESIDE_LIBRARIES))
        for target in dlexp_imports(module)
        if not within(target, allowed) and target != "dlexp"
    ]
    assert bad == []


def test_only_the_entry_points_import_cli():
    importers = [m for m in SOURCES if "dlexp.cli" in dlexp_imports(m)]
    assert set(importers) <= ENTRY_POINTS, importers


def test_report_never_imports_a_sweeper_and_compat_is_imported_by_nothing():
    assert offenders(("dlexp.report",), SWEEPERS) == []
    importers = [
        m for m in SOURCES if not within(m, ("dlexp.compat",)) and within_any(m, "dlexp.compat")
    ]
    assert importers == []


def local_imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of each import statement inside a function."""
    functions = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)]
    found = []
    for node in (n for f in functions for n in ast.walk(f)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module, node.lineno))
    return found


def test_function_local_imports_keep_only_heavy_modules_off_a_path_and_say_so():
    bad = []
    for module, path in SOURCES.items():
        lines = path.read_text().splitlines()
        for name, line in local_imports(path):
            root = name.split(".")[0]
            hydra_in_errors = module == "dlexp.errors" and root in ("hydra", "omegaconf")
            if not (root in HEAVY or name in HEAVY or name in LAZY_DLEXP or hydra_in_errors):
                bad.append(f"{module}:{line} imports {name} inside a function")
            if "#" not in lines[line - 1] and not lines[line - 2].strip().startswith("#"):
                bad.append(f"{module}:{line}: a local import without a comment saying why")
    assert bad == []


def test_no_private_api_of_hydra_or_optuna():
    bad = []
    for module, path in SOURCES.items():
        tree = ast.parse(path.read_text())
        bad += [f"{module} imports {n}" for n, _ in imports(path) if "._internal" in n]
        bad += [
            f"{module}:{node.lineno} uses .{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr in PRIVATE_APIS
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        ]
    assert bad == []


def loaded_after_import(code: str, candidates: tuple[str, ...]) -> list[str]:
    check = f"{code}; import json, sys; print(json.dumps([m for m in {list(candidates)!r} if m in sys.modules]))"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


FACE_AND_LOOP = ("hydra", "omegaconf", "tensorboard", "dlexp.training", "dlexp.api",
                 "dlexp.loop", "dlexp.backends", "dlexp.config", "dlexp.build", "dlexp.cli",
                 "dlexp.run", "dlexp.search")  # fmt: skip
NOT_LOADED_BY = {  # library: what it must not load, beyond the face and the loop
    "dlexp": ("torch",),  # the package exports the Python API lazily (PEP 562)
    "dlexp.numpy_nn": ("torch",),
    "dlexp.data": ("torch",),
    "dlexp.models": ("torch",),  # torch models load on first use, not on import
    "dlexp.nn": ("torch",),  # its torch blocks load on first use
    "dlexp.nn.norm_spec": ("torch",),  # the norm group's schema, read while composing
    "dlexp.errors": ("torch",),
    "dlexp.overrides": ("torch",),
}


@pytest.mark.parametrize("library", NOT_LOADED_BY)
def test_libraries_load_nothing_above_them(library):
    assert loaded_after_import(f"import {library}", FACE_AND_LOOP + NOT_LOADED_BY[library]) == []


def test_the_python_api_is_exported_lazily_and_loads_no_torch_for_numpy():
    code = (
        "import dlexp, dlexp.api, dlexp.training; "
        "assert (dlexp.compose, dlexp.load_run, dlexp.Run) == "
        "(dlexp.api.compose, dlexp.api.load_run, dlexp.api.Run); "
        "assert dlexp.train is dlexp.training.train; from dlexp import train"
    )
    assert loaded_after_import(code, ("torch",)) == []


def test_the_config_check_runs_before_torch_loads():
    assert loaded_after_import("import dlexp.config.checks", ("torch",)) == []


def test_importing_dlexp_registers_no_resolver_and_no_schema():
    """Resolvers and schemas are registered by the commands (dlexp.config.register_config), and
    by loading the configs (dlexp.conf); importing a module registers nothing."""
    skipped = ("dlexp.compat", "dlexp.search.hydra_plugin", "dlexp.__main__")  # __main__ runs
    modules = [m for m in SOURCES if not within(m, skipped)]
    code = (
        f"import importlib; [importlib.import_module(m) for m in {modules!r}]; "
        "from omegaconf import OmegaConf; from hydra.core.config_store import ConfigStore; "
        "from dlexp.config import RESOLVERS; "
        "registered = [n for n in RESOLVERS if OmegaConf.has_resolver(n)]; "
        "registered += ['train_schema'] * ('train_schema.yaml' in ConfigStore.instance().list(''))"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"{code}; print(registered)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "entry", ["dlexp.training", "dlexp.api", "dlexp.evaluate", "dlexp.report.plot"]
)
def test_commands_import_no_sweeper_before_hydra_scans_its_plugins(entry):
    """Hydra's first plugin scan re-imports the plugin modules; the commands register dlexp's
    sweepers after that scan (dlexp.search.register_plugins), never on import."""
    sweepers = ("dlexp.search.grid_sweeper", "dlexp.search.optuna_sweeper", PLUGIN_MODULE)
    assert loaded_after_import(f"import {entry}", sweepers) == []
