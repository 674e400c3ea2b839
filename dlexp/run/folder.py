"""Reading a finished run's folder back: the one reader of `.hydra/overrides.yaml`, and of its
saved config for the commands that rebuild a run (dlexp-eval, dlexp.load_run)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from dlexp.overrides import is_plumbing

MAX_FOLDER_NAME = 160  # characters of a job folder's name; file systems allow 255 bytes


def read_overrides(run: Path, skip_plumbing: bool = True) -> list[str]:
    """The command-line overrides the run was started with ([] when none were recorded)."""
    path = Path(run) / ".hydra" / "overrides.yaml"
    overrides = (yaml.safe_load(path.read_text()) or []) if path.is_file() else []
    if skip_plumbing:
        overrides = [o for o in overrides if not is_plumbing(o)]
    return overrides


def saved_config_file(run: Path) -> Path:
    return Path(run) / ".hydra" / "config.yaml"


def read_saved_config(run: Path) -> DictConfig | None:
    """The config Hydra saved for the run, with output_dir set to its folder (the saved
    `${hydra:runtime.output_dir}` resolves only inside Hydra); None when it saved none."""
    path = saved_config_file(run)
    if not path.is_file():
        return None
    cfg = OmegaConf.load(path)
    cfg.output_dir = str(run)
    return cfg


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
