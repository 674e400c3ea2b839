"""Reading a finished run's folder back: the one reader of `.hydra/overrides.yaml`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from dlexp.overrides import is_plumbing

MAX_FOLDER_NAME = 160  # characters of a job folder's name; file systems allow 255 bytes


def read_overrides(run: Path, skip_plumbing: bool = True) -> list[str]:
    """The command-line overrides the run was started with ([] when none were recorded)."""
    path = Path(run) / ".hydra" / "overrides.yaml"
    overrides = (yaml.safe_load(path.read_text()) or []) if path.is_file() else []
    if skip_plumbing:
        overrides = [o for o in overrides if not is_plumbing(o)]
    return overrides


def job_folder_name(number: int | str, overrides: str) -> str:
    """`<job number>_<overrides>` for a sweep's job folder: Hydra's override_dirname (plumbing
    keys excluded in train.yaml) with `/` escaped; a long one is cut and ends in a hash of it."""
    if not overrides:
        return str(number)
    name = f"{number}_{overrides.replace('%', '%25').replace('/', '%2F')}"
    if len(name) > MAX_FOLDER_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_FOLDER_NAME - 9]}~{digest}"
    return name


def job_number(folder: Path) -> int | None:
    """The job number a sweep's job folder starts with (`3` or `3_optim.lr=0.1`), else None."""
    head = folder.name.split("_", 1)[0]
    return int(head) if head.isdigit() else None
