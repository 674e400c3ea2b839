"""Reading a finished run's folder back: the one reader of `.hydra/overrides.yaml`."""

from __future__ import annotations

from pathlib import Path

import yaml

# Overrides that say nothing about what a run is: where it ran, how it showed, which trial.
PLUMBING = ("hydra.", "data.root", "output_dir", "progress", "task_name", "search.")


def read_overrides(run: Path, skip_plumbing: bool = True) -> list[str]:
    """The command-line overrides the run was started with ([] when none were recorded)."""
    path = Path(run) / ".hydra" / "overrides.yaml"
    overrides = (yaml.safe_load(path.read_text()) or []) if path.is_file() else []
    if skip_plumbing:
        overrides = [o for o in overrides if not o.lstrip("+~").startswith(PLUMBING)]
    return overrides
