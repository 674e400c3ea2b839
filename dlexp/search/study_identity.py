"""A study's identity, so that a study never mixes budgets: the resolved config minus plumbing
(dlexp.overrides) and minus the searched keys, plus the search space. It is kept in the study's
storage (user attribute `identity`) and compared on every rerun (docs/search.md, "Reruns").

Optuna is imported inside the functions that need it: Hydra imports the sweeper on every run.
"""

from __future__ import annotations

import hashlib
import json
import logging

from omegaconf import DictConfig, OmegaConf

from dlexp.errors import ConfigError
from dlexp.overrides import PLUMBING_KEYS, is_plumbing
from dlexp.search.best_preset import flatten

log = logging.getLogger(__name__)

IDENTITY = "identity"  # the study's user attribute: {"config": {key: value}, "space": {...}}


def study_identity(cfg: DictConfig, distributions: dict) -> dict:
    """{"config": the flat resolved config without plumbing or searched keys, "space": each
    searched key's Optuna distribution as JSON}."""
    from optuna.distributions import distribution_to_json  # Optuna: only once a search starts

    container = OmegaConf.to_container(cfg, resolve=False)
    for key in ("hydra", *PLUMBING_KEYS):  # ${hydra:...} and paths resolve only in a job
        container.pop(key, None)
    resolved = OmegaConf.to_container(OmegaConf.create(container), resolve=True)
    config = {
        key: value
        for key, value in flatten(resolved).items()
        if not is_plumbing(key) and key not in distributions
    }
    space = {key: distribution_to_json(d) for key, d in sorted(distributions.items())}
    return {"config": config, "space": space}


def digest(identity: dict) -> str:
    """8 hex digits of the identity's SHA-256: the suffix of a study's default name."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def differences(held: dict, new: dict, limit: int = 3) -> str:
    """`max_steps=200, not 100; eval_freq=...`: the first keys whose values differ."""
    lines = []
    for part in ("config", "space"):
        was, now = held.get(part, {}), new.get(part, {})
        for key in sorted(set(was) | set(now)):
            if was.get(key) != now.get(key):
                shown = {"config": "", "space": "search space "}[part]
                lines.append(f"{shown}{key}={was.get(key, '(none)')}, not {now.get(key, '(none)')}")
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more


def choose_study_name(storage, name: str, identity: dict, named_by_user: bool) -> str:
    """The study this search runs in. The study called `name` when it holds this identity (or
    none yet, or it was stored before identities: then it adopts this one, said in one line).
    Otherwise a study named by the user is refused in one line, and a default name goes on as
    `<name>-<digest>`, said in one line."""
    import optuna  # (as study_identity)

    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, False)}
    if name not in existing:
        return name
    held = existing[name].user_attrs.get(IDENTITY)
    if held is None:  # stored by a dlexp before identities
        log.info(
            "study %r has no recorded identity (an older dlexp stored it): continuing it, with "
            "this run's config as its identity from now on",
            name,
        )
        return name
    if held == identity:
        return name
    differ = differences(held, identity)
    if named_by_user:
        raise ConfigError(
            f"study {name!r} was run with {differ}: a study keeps one budget and search space; "
            f"rerun with its values, or pick another hydra.sweeper.study_name"
        )
    fresh = f"{name}-{digest(identity)}"
    log.info("study %r was run with %s: this search is study %r", name, differ, fresh)
    return fresh


def record_identity(study, identity: dict) -> None:
    """Keep the identity in the study's storage (once: a rerun found it equal, or adopts it)."""
    if study.user_attrs.get(IDENTITY) != identity:
        study.set_user_attr(IDENTITY, identity)
