"""Hyperparameter search: a grid sweeper that composes every job before the first one runs, and
an Optuna sweeper that prunes, resumes and spreads over processes (docs/search.md).

Hydra imports every plugin module on every run, so nothing here imports Optuna until a search
starts.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from hydra.core.plugins import Plugins

PLUGIN_MODULE = "hydra_plugins.dlexp_sweepers"  # dlexp/search/hydra_plugin, mapped by pyproject
_registered = False


def _plugin_module():
    """The plugin module; from its file when no install maps it (a bare source checkout)."""
    try:
        return importlib.import_module(PLUGIN_MODULE)
    except ImportError:
        path = Path(__file__).parent / "hydra_plugin" / "__init__.py"
        spec = importlib.util.spec_from_file_location(PLUGIN_MODULE, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[PLUGIN_MODULE] = module
        spec.loader.exec_module(module)
        return module


def register_plugins() -> None:
    """Register dlexp's sweepers with Hydra; Hydra's own scan can miss them in an editable install.

    Idempotent and cheap: call it before Hydra runs.
    """
    global _registered
    if _registered:
        return
    plugins = Plugins.instance()  # scans first: registering after the scan keeps ours
    module = _plugin_module()
    plugins.register(module.DlexpGridSweeper)
    plugins.register(module.DlexpOptunaSweeper)
    _registered = True
