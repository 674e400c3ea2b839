"""dlexp.errors: the one line each user error becomes, Hydra's and OmegaConf's included, and a
failed job's reason."""

from __future__ import annotations

import pytest
from hydra.errors import HydraException
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from dlexp.errors import (
    ConfigError,
    DataError,
    DlexpError,
    closest,
    failure_reason,
    first_line,
    job_user_errors,
    one_line,
    user_errors,
)
from tests.conftest import compose_train


def test_closest_suggests_the_nearest_known_name_or_nothing():
    assert closest("lrr", ["lr", "momentum"]) == "; did you mean lr?"
    assert closest("adamx", ("sgd", "adam", "adamw")) == "; did you mean adam?"
    assert closest("flip_crp", iter(["none", "flip", "flip_crop"])) == "; did you mean flip_crop?"
    assert closest("zzz", ["lr", "momentum"]) == ""
    assert closest("lr", []) == ""


def test_first_line_is_the_first_line_with_text():
    assert first_line("\n\n  one  \ntwo") == "one"
    assert first_line("") == "" and first_line(" \n ") == ""


def test_the_error_families():
    assert issubclass(ConfigError, DlexpError) and issubclass(ConfigError, ValueError)
    assert issubclass(DataError, DlexpError) and not issubclass(DataError, ValueError)
    assert set(user_errors()) == {DlexpError, HydraException, OmegaConfBaseException}
    assert set(job_user_errors()) == {DlexpError, MissingMandatoryValue}


# (overrides, the one line); composing them raises Hydra's own errors
COMPOSE_ERRORS = [
    (["model=foo"], "unknown model option 'foo'; choose one of convnet, custom, numpy_mlp, "
                    "torch_mlp"),
    (["optim=adamx"], "unknown optim option 'adamx'; did you mean adam?; choose one of adam, "
                      "adamw, sgd"),
    (["max_steps=abc"], "max_steps=abc: expected an integer, got 'abc'"),
    (["optim.lr=[1,2]"], "optim.lr=[1,2]: expected a number, got '[1, 2]'"),
    (["optim.lrr=1"], "unknown key 'optim.lrr'; did you mean optim.lr?"),
    (["maxsteps=5"], "unknown key 'maxsteps'; did you mean max_steps?"),
    (["max_steps=["], "cannot parse the override max_steps=[: no viable alternative at input '['"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "line"), COMPOSE_ERRORS, ids=[c[0][0] for c in COMPOSE_ERRORS]
)
def test_hydras_composition_errors_become_one_line(overrides, line):
    with pytest.raises(user_errors()) as err:
        compose_train([*overrides, "output_dir=/unused"])
    assert one_line(err.value) == line


def test_omegaconf_errors_name_the_key_and_the_nearest_known_one():
    cfg = compose_train(["model=custom", "output_dir=/unused"])
    with pytest.raises(MissingMandatoryValue) as missing:
        _ = cfg.model.name  # `???` in conf/model/custom.yaml
    line = "model.name needs a value: add model.name=<value> to the command line"
    assert one_line(missing.value) == line
    with pytest.raises(OmegaConfBaseException) as wrong_type:
        cfg.max_steps = "abc"
    assert one_line(wrong_type.value) == "max_steps: expected an integer, got 'abc'"
    with pytest.raises(OmegaConfBaseException) as unknown:
        _ = cfg.optim.lrr
    assert one_line(unknown.value) == "unknown key 'optim.lrr'; did you mean optim.lr?"


def test_any_other_error_is_its_first_line_or_its_type():
    assert one_line(ConfigError("bad value\n  details")) == "bad value"
    assert one_line(DataError("")) == "DataError"
    assert one_line(HydraException("\nHydra says no\nmore")) == "Hydra says no"


def test_a_failed_jobs_reason_is_a_user_errors_line_or_a_bugs_type_and_line():
    assert failure_reason(ConfigError("optim (sgd): lr must be > 0\nmore")) == (
        "optim (sgd): lr must be > 0"
    )
    assert failure_reason(KeyError("x")) == "KeyError: 'x'"
    assert failure_reason(RuntimeError("CUDA error: out of memory\ntrace")) == (
        "RuntimeError: CUDA error: out of memory"
    )
    assert failure_reason(AssertionError()) == "AssertionError"
    try:
        _ = compose_train(["model=custom", "output_dir=/unused"]).model.name
    except MissingMandatoryValue as missing:  # a job's own user error, not a bug
        assert failure_reason(missing) == one_line(missing)
        assert not failure_reason(missing).startswith("MissingMandatoryValue")
