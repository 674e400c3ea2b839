"""Command-line overrides: the one parser of an override's key, and the one list of plumbing.

Plumbing says where a run ran, how it showed and which trial it was, never what it computes. It is
left out of sweep job folder names (train.yaml's exclude_keys, through the `dlexp_plumbing`
resolver), of HParams and plot legends, and of a search's best.yaml.
"""

from __future__ import annotations

import os
import re
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


# The course scripts' flags (dlexp.compat.uva2019) and the override each one is; dlexp-train
# refuses them with the override to write instead.
COURSE_FLAGS = {
    "--learning_rate": "optim.lr",
    "--max_steps": "max_steps",
    "--batch_size": "batch_size",
    "--eval_freq": "eval_freq",
    "--neg_slope": "model.neg_slope",
    "--dnn_hidden_units": "model.n_hidden",  # "100,100" -> [100,100]
    "--data_dir": "data.root",
}


def quote(value: str) -> str:
    """A Hydra-quoted string, so paths with spaces, commas or '=' stay one value."""
    # Hydra reads a backslash as an escape only before a quote or the closing quote.
    escaped = re.sub(r"(\\*)('|$)", lambda m: 2 * m[1] + ("\\'" if m[2] else ""), value)
    return f"'{escaped}'"


def course_override(flag: str, value: str) -> str:
    """`--learning_rate 0.01` -> `optim.lr=0.01`; the hidden units become a list, a path is
    quoted."""
    key = COURSE_FLAGS[flag]
    if flag == "--dnn_hidden_units":
        value = f"[{value.strip()}]"
    elif flag == "--data_dir":
        value = quote(os.path.expanduser(value))
    return f"{key}={value}"


def expand_home(override: str) -> str:
    """`data.root=~/x` -> `data.root=/home/me/x`, as a shell would: Hydra's grammar refuses an
    unquoted `~` in a value. A quoted value, a sweep and a `~key` deletion stay as they are."""
    key, sep, value = override.partition("=")
    if not sep or not value.startswith("~") or "," in value:
        return override
    expanded = os.path.expanduser(value)
    if expanded == value:  # `~name` of no such user: Hydra refuses it, errors.py says to quote
        return override
    plain = re.fullmatch(r"[\w./+@%:-]*", expanded)  # what Hydra reads unquoted
    return f"{key}={expanded if plain else quote(expanded)}"
