"""The optim, sched and norm schemas are their constructors' (or spec function's) signatures;
torch takes every key."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import dlexp.conf
import pytest
import torch

from dlexp.backends.torch_schedules import make_torch_scheduler
from dlexp.config.schema import RUNTIME_ARGUMENTS, SCHEMAS
from dlexp.nn.norm import make_norm
from dlexp.nn.norm_spec import NORMS, norm_arguments
from dlexp.numpy_nn import OPTIMIZERS, SCHEDULE_CLASSES, SCHEDULES
from tests.conftest import compose_train

CONF = Path(dlexp.conf.__file__).parent
SCHEMA = dict(SCHEMAS)


def configurable(constructor) -> dict:
    """{argument: default or None} of a constructor, without what the run passes."""
    parameters = inspect.signature(constructor).parameters.values()
    return {
        p.name: None if p.default is p.empty else p.default
        for p in parameters
        if p.name not in RUNTIME_ARGUMENTS
    }


def test_every_optim_and_sched_option_has_a_constructor_and_a_yaml_file():
    assert sorted(p.stem for p in (CONF / "optim").glob("*.yaml")) == sorted(OPTIMIZERS)
    assert sorted(p.stem for p in (CONF / "sched").glob("*.yaml")) == sorted(SCHEDULES)


@pytest.mark.parametrize(
    ("group", "option", "constructor"),
    [("optim", n, c) for n, c in OPTIMIZERS.items()]
    + [("sched", n, c) for n, c in SCHEDULE_CLASSES.items()],
)
def test_a_schema_is_its_constructors_signature(group, option, constructor):
    fields = {f.name: f for f in dataclasses.fields(SCHEMA[f"{group}_{option}_schema"])}
    arguments = configurable(constructor)
    assert list(fields) == ["name", *arguments]  # no key declared anywhere else
    for key, default in arguments.items():
        assert fields[key].default == ("???" if default is None else default), key
    composed = compose_train(["model=torch_mlp", f"{group}={option}"])[group]
    assert set(composed) == set(fields)  # the YAML file only chooses values


@pytest.mark.parametrize("option", OPTIMIZERS)
def test_torch_takes_every_key_of_each_optimizer(option):
    cfg = compose_train(["model=torch_mlp", f"optim={option}"])
    keys = {k: v for k, v in cfg.optim.items() if k != "name"}
    torch_class = getattr(torch.optim, OPTIMIZERS[option].__name__)
    torch_class([torch.nn.Parameter(torch.zeros(2))], **keys)  # an unknown key would raise


@pytest.mark.parametrize("option", SCHEDULES)
def test_torch_takes_every_key_of_each_schedule(option):
    cfg = compose_train(["model=torch_mlp", f"sched={option}"])
    keys = {k: v for k, v in cfg.sched.items() if k != "name"}
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    scheduler = make_torch_scheduler(optimizer, option, total_steps=100, **keys)
    assert (scheduler is None) == (option == "none")


@pytest.mark.parametrize("option", NORMS)
def test_the_norm_schema_is_its_spec_functions_signature(option):
    norm_type = {f.name: f.type for f in dataclasses.fields(SCHEMA["train_schema"])}["norm"]
    norm_fields = {f.name: f.default for f in dataclasses.fields(norm_type)}
    assert norm_fields == {"name": "???", **configurable(norm_arguments)}
    composed = compose_train(["model=torch_mlp", f"norm={option}"]).norm
    assert set(composed) == set(norm_fields)
    layer = make_norm(option, 4, 1, **{k: v for k, v in composed.items() if k != "name"})
    if option != "none":  # the composed values reach the layer
        assert (layer.eps, layer.momentum) == (composed.eps, composed.momentum)


def test_a_wrong_type_or_unknown_key_is_still_refused_while_composing():
    from hydra.errors import HydraException

    with pytest.raises(HydraException):
        compose_train(["optim=adam", "optim.eps=abc"])
    with pytest.raises(HydraException):
        compose_train(["sched=step", "sched.gammma=0.5"])
