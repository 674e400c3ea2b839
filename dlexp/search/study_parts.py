"""The Optuna pieces that the sweeper and each trial's job build alike: storage, sampler, pruner.

Optuna is imported inside each function: Hydra imports the sweeper module on every run.
"""

from __future__ import annotations

import time
from pathlib import Path

from dlexp.errors import ConfigError

PRUNERS = ("median", "successive_halving", "hyperband", "none")
SAMPLERS = ("tpe", "random")


def storage_spec(storage: str) -> str:
    """An Optuna storage URL as given (`sqlite:///x.db`, ...), or a journal file's absolute path."""
    if "://" in storage:
        return storage
    return str(Path(storage).expanduser().absolute())


def shown_storage(spec: str) -> str:
    """A storage as logs and errors show it: a URL's password hidden."""
    if "://" not in spec:
        return spec
    from sqlalchemy.engine import make_url  # SQLAlchemy comes with Optuna

    try:
        return make_url(spec).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: RDBStorage will say so
        return spec


def open_storage(spec: str, heartbeat: dict | None = None):
    """The Optuna storage of a spec: an RDBStorage on a URL (with `heartbeat`, the keywords of
    trial_heartbeats.heartbeat_options), or a JournalStorage on a file."""
    from optuna.storages import JournalStorage, RDBStorage  # Optuna: only once a search starts
    from optuna.storages.journal import JournalFileBackend  # (as above)

    if "://" not in spec:
        Path(spec).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(spec))
    try:
        return _first_rdb_storage(RDBStorage, spec, heartbeat or {})
    except ImportError:  # the database's driver (Optuna wraps its import error)
        extra = ': pip install "dlexp[postgres]"' if spec.startswith("postgres") else ""
        raise ConfigError(
            f"storage {shown_storage(spec)} needs its database driver{extra}"
        ) from None
    except Exception as err:  # SQLAlchemy's: a bad URL, a server that does not answer
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"cannot open storage {shown_storage(spec)}: {first}") from None


def _first_rdb_storage(rdb_storage, spec: str, heartbeat: dict, tries: int = 5):
    """RDBStorage(spec), what create_study would build from a URL. Workers started together on
    a new database race to create Optuna's tables: the losers' unique-key or duplicate-table
    errors pass once the winner has made them, so those are retried."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError  # SQLAlchemy: comes with Optuna

    for attempt in range(1, tries):
        try:
            return rdb_storage(spec, **heartbeat)
        except (IntegrityError, ProgrammingError):
            time.sleep(0.2 * attempt)
    return rdb_storage(spec, **heartbeat)


def trial_seed(seed: int, number: int) -> int:
    """The sampler's seed for trial `number`. Trial numbers are unique in a study, so cooperating
    processes never share a seed (equal seeds would propose equal parameters), while one process
    rerun on the same history proposes the same trials."""
    return (seed * 1_000_003 + number) % 2**32


def make_sampler(sampler: dict, number: int):
    """A sampler seeded for trial `number`.

    sampler: {name, seed, n_startup_trials, constant_liar}, as in conf/hydra/sweeper.
    """
    import optuna  # Optuna: only once a search starts

    name, seed = sampler["name"], trial_seed(int(sampler["seed"]), number)
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=sampler["n_startup_trials"],
            constant_liar=sampler["constant_liar"],
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(
        f"unknown hydra.sweeper.sampler.name {name!r}; choose one of {', '.join(SAMPLERS)}"
    )


def make_pruner(pruner: dict):
    """pruner: {name, n_startup_trials, n_warmup_steps, min_resource, reduction_factor}; steps
    are optimizer steps, the unit in which each evaluation is reported."""
    import optuna  # Optuna: only once a search starts

    name = pruner["name"]
    min_resource = pruner.get("min_resource")
    factor = pruner.get("reduction_factor")
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=pruner["n_startup_trials"], n_warmup_steps=pruner["n_warmup_steps"]
        )
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource="auto" if min_resource is None else min_resource,
            reduction_factor=factor or 4,
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=min_resource or 1, reduction_factor=factor or 3
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(
        f"unknown hydra.sweeper.pruner.name {name!r}; choose one of {', '.join(PRUNERS)}"
    )


def trial_id(storage, study_name: str, number: int) -> int:
    """The storage's id of trial `number` (Optuna's Trial wants the id, a job knows the number),
    through the storage's public API (optuna.storages.BaseStorage)."""
    study_id = storage.get_study_id_from_name(study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)
