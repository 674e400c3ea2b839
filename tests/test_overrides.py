"""dlexp.overrides: an override's key, and which overrides are plumbing or configure Hydra."""

from __future__ import annotations

import pytest

from dlexp.overrides import (
    PLUMBING_GROUPS,
    PLUMBING_KEYS,
    configures_hydra,
    is_plumbing,
    override_key,
    plumbing_keys,
)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optim.lr=0.1", "optim.lr"),
        ("+model.depth=3", "model.depth"),
        ("++seed=1", "seed"),
        ("~logger.csv", "logger.csv"),
        ("data.root=/a=b", "data.root"),  # only the first `=` splits
        ("hydra/launcher=joblib", "hydra/launcher"),
        ("model.n_hidden", "model.n_hidden"),  # a bare key
    ],
)
def test_override_key(override, key):
    assert override_key(override) == key


@pytest.mark.parametrize("override", [*(f"{k}=x" for k in PLUMBING_KEYS), "+resume=/run",
                                      "logger.csv.file=m.csv", "checkpoint.every=5",
                                      "search.trial=3", "hydra.sweep.dir=/s", "logger.tensorboard",
                                      "hparams_search=torch_mlp"])  # fmt: skip
def test_where_and_how_a_run_ran_is_plumbing(override):
    assert is_plumbing(override)


@pytest.mark.parametrize("override", ["optim.lr=0.1", "model.n_hidden=[8]", "data.augment=flip",
                                      "data.validation_size=0", "seed=1", "max_steps=10",
                                      "data.rootx=/x", "loggers=1", "model=torch_mlp"])  # fmt: skip
def test_what_a_run_computes_is_not_plumbing(override):
    assert not is_plumbing(override)


def test_the_plumbing_groups():
    assert set(PLUMBING_GROUPS) == {"hydra", "search", "logger", "checkpoint"}


def test_plumbing_keys_are_the_keys_of_a_jobs_plumbing_overrides_in_order():
    overrides = ["optim.lr=0.1", "data.root=/d", "+search.trial=2", "seed=3", "progress=false"]
    assert plumbing_keys(overrides) == ["data.root", "search.trial", "progress"]
    assert plumbing_keys([]) == []


@pytest.mark.parametrize(
    ("override", "part", "expected"),
    [
        ("hydra.run.dir=/r", "", True),
        ("hydra/launcher=joblib", "", True),
        ("+hydra.job.chdir=false", "", True),
        ("optim.lr=0.1", "", False),
        ("hydra.sweeper.n_trials=3", "sweeper", True),
        ("hydra/sweeper=dlexp_optuna", "sweeper", True),
        ("hydra.launcher.n_jobs=2", "sweeper", False),
        ("hydra/launcher=joblib", "launcher", True),
        ("hparams_search=grid", "", False),
    ],
)
def test_configures_hydra(override, part, expected):
    assert configures_hydra(override, part) is expected
