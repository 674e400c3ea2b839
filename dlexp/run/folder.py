"""A run's folder: created at its start (`create_run_folder`); read back, the one reader of
`.hydra/overrides.yaml`, and of its saved config for the commands that rebuild a run (dlexp-eval,
dlexp.load_run); and undoing what a refused single run added to a folder (`FolderAtStart`)."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from dlexp.errors import ConfigError
from dlexp.overrides import is_plumbing

MAX_FOLDER_NAME = 160  # characters of a job folder's name; file systems allow 255 bytes


def create_run_folder(cfg: DictConfig) -> Path:
    """The run's folder, `output_dir` (Hydra's run folder, or dlexp.compose()'s), created."""
    try:
        out = Path(cfg.output_dir)
    except Exception:  # an unresolvable ${hydra:...} outside a Hydra app
        raise ConfigError(
            "output_dir is unset: compose the config with dlexp.compose(), or pass output_dir=..."
        ) from None
    out.mkdir(parents=True, exist_ok=True)
    return out


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


_NEXT_ITEM = re.compile(r",(?=[^,=\[\]]+=)")  # a comma before the next key=, not inside [a,b]


def _short_value(value: str) -> str:
    """A float to 4 significant digits (0.2694, 1e-05); anything else as it is."""
    if not re.fullmatch(r"-?[\d.]+(e-?\d+)?", value) or not re.search(r"[.e]", value):
        return value
    return f"{float(value):.4g}"


def short_overrides(overrides: str) -> str:
    """Hydra's override_dirname, readable in TensorBoard's run list: each key by its last part
    (the full key where two share it) and floats at 4 significant digits:
    `model.dropout=0.26939982404817925,optim.lr=0.001` -> `dropout=0.2694,lr=0.001`."""
    items = [item.partition("=") for item in _NEXT_ITEM.split(overrides)]
    leaves = Counter(key.rsplit(".", 1)[-1] for key, _, _ in items)
    shown = []
    for key, _, value in items:
        leaf = key.rsplit(".", 1)[-1]
        shown.append(f"{leaf if leaves[leaf] == 1 else key}={_short_value(value)}")
    return ",".join(shown)


def job_folder_name(number: int | str, overrides: str) -> str:
    """`<job number>_<overrides>` for a sweep's job folder: Hydra's override_dirname (plumbing
    keys excluded in train.yaml) made short (short_overrides) with `/` escaped; a long one is
    cut and ends in a hash of it."""
    if not overrides:
        return str(number)
    short = short_overrides(overrides)
    name = f"{number}_{short.replace('%', '%25').replace('/', '%2F')}"
    if len(name) > MAX_FOLDER_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_FOLDER_NAME - 9]}~{digest}"
    return name


def job_number(folder: Path) -> int | None:
    """The job number a sweep's job folder starts with (`3` or `3_optim.lr=0.1`), else None."""
    head = folder.name.split("_", 1)[0]
    return int(head) if head.isdigit() else None


HYDRA_FILES = frozenset({"config.yaml", "hydra.yaml", "overrides.yaml"})  # Hydra's output_subdir
REFUSED_RUN_FILES = frozenset({"metrics.json", "environment.json"})  # dlexp's, before step 1


@dataclass(frozen=True)
class FolderAtStart:
    """A single run's folder as Hydra left it when the job started, so that a run refused before
    its first step can take back what this process added and nothing else: the whole folder when
    this process made it (it held only Hydra's fresh files and an empty log), else Hydra's
    `.hydra/resume-<n>/` and the log lines of this process."""

    folder: Path
    subdir: Path  # Hydra's output_subdir: .hydra, or .hydra/resume-<n> beside a resumed run's
    log: Path  # Hydra's job log, train.log
    log_size: int  # bytes in the log when the job started
    created: bool  # this process made the folder

    @classmethod
    def look(cls, folder: Path, subdir: str, log_name: str) -> FolderAtStart:
        folder = Path(folder)
        log = folder / log_name
        log_size = log.stat().st_size if log.is_file() else 0
        created = (
            _names(folder) <= {".hydra", log_name}
            and _names(folder / ".hydra") <= HYDRA_FILES
            and log_size == 0
            and subdir == ".hydra"
        )
        return cls(folder, folder / subdir, log, log_size, created)

    def undo(self) -> None:
        """Remove what this process added before a refusal: its folder, when it made one that
        still holds only Hydra's files and dlexp's record; else its resume config and log lines.
        """
        if self.created:
            names = {".hydra", self.log.name, *REFUSED_RUN_FILES}
            if _names(self.folder) <= names and _names(self.folder / ".hydra") <= HYDRA_FILES:
                shutil.rmtree(self.folder)
            return
        if self.subdir.name.startswith("resume-") and _names(self.subdir) <= HYDRA_FILES:
            shutil.rmtree(self.subdir)
        if self.log.is_file() and self.log.stat().st_size > self.log_size:
            with self.log.open("r+b") as log:
                log.truncate(self.log_size)


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()
