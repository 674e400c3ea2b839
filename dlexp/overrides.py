"""Command-line overrides: the one parser of an override's key, and the one list of plumbing.

Plumbing says where a run ran, how it showed and which trial it was, never what it computes. It is
left out of sweep job folder names (train.yaml's exclude_keys, through the `dlexp_plumbing`
resolver), of HParams and plot legends, and of a search's best.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

PLUMBING_KEYS = (
    "data.root", "data.url", "data.md5", "data.download", "data.cache",
    "output_dir", "progress", "task_name", "resume", "hparams_search",
)  # fmt: skip
PLUMBING_GROUPS = ("hydra", "search", "logger", "checkpoint")  # every key under these


def override_key(override: str) -> str:
    """`+model.depth=3` -> `model.depth`; a bare key is returned as it is."""
    return override.lstrip("+~").split("=", 1)[0]


def is_plumbing(override: str) -> bool:
    """Whether an override (`data.root=/x`) or a dotted key (`logger.csv.file`) is plumbing."""
    key = override_key(override)
    return key in PLUMBING_KEYS or key.split(".", 1)[0] in PLUMBING_GROUPS


def plumbing_keys(task_overrides: Iterable[str]) -> list[str]:
    """The keys of the plumbing overrides among a job's: Hydra's exclude_keys for the job's
    folder name (resolver `dlexp_plumbing` in train.yaml)."""
    return [override_key(o) for o in task_overrides if is_plumbing(o)]


def configures_hydra(override: str, part: str = "") -> bool:
    """Whether an override sets Hydra itself (`hydra.x=`, `hydra/launcher=`); with `part`, only
    that part of it (`sweeper`: `hydra.sweeper.n_trials=`, `hydra/sweeper=`)."""
    key = override_key(override)
    if not part:
        return key.startswith("hydra")
    return key.startswith((f"hydra.{part}", f"hydra/{part}"))
