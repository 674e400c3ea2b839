"""Every config key is declared once: a group option's schema is its constructor's (or spec
function's) signature, the top-level keys have one dataclass, and torch takes every key."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from pathlib import Path

import dlexp.conf
import pytest
import torch
from omegaconf import OmegaConf

import dlexp
from dlexp.backends import BackendOptions
from dlexp.backends.torch_schedules import make_torch_scheduler
from dlexp.config.schema import BACKEND_KEYS, LOOP_KEYS, RUNTIME_ARGUMENTS, TrainConfig
from dlexp.loop import LoopSchedule
from dlexp.models.registry import BUILTIN_MODELS, get_model_entry
from dlexp.nn.norm import make_norm
from dlexp.nn.norm_spec import NORMS, norm_arguments
from dlexp.numpy_nn import OPTIMIZERS, SCHEDULE_CLASSES, SCHEDULES
from dlexp.run.loggers import LOGGER_ARGUMENTS
from tests.conftest import compose_train

CONF = Path(dlexp.conf.__file__).parent
PACKAGE = Path(dlexp.__file__).parent


NO_DEFAULT = "???"  # what the schema holds for an argument without a default: the YAML gives it


def configurable(constructor) -> dict:
    """{argument: default or ???} of a constructor, without what the run passes."""
    parameters = inspect.signature(constructor).parameters.values()
    return {
        p.name: NO_DEFAULT if p.default is p.empty else p.default
        for p in parameters
        if p.name not in RUNTIME_ARGUMENTS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def constructor_of(group: str, option: str):
    """The constructor (or spec function) whose signature is this option's schema; None for an
    option with no keys of its own (sched=none) or none known while composing (model=custom)."""
    if group == "optim":
        return OPTIMIZERS[option]
    if group == "sched":
        return SCHEDULE_CLASSES.get(option)
    if group == "norm":
        return norm_arguments
    if group == "model":
        return get_model_entry(option).factory if option in BUILTIN_MODELS else None
    return LOGGER_ARGUMENTS[option]


OPTIONS = [(g, p.stem) for g in ("optim", "sched", "norm", "model", "logger")
           for p in sorted((CONF / g).glob("*.yaml"))]  # fmt: skip


def composed_group(group: str, option: str):
    overrides = ["model=torch_mlp", f"{group}={option}"]
    if group == "model" and option == "custom":
        overrides = ["model=custom", "model.name=dlexp.models.torch_mlp:MLP"]
    if group == "logger":
        overrides = [f"logger=[{option}]"]
    cfg = compose_train(overrides)
    return cfg.logger[option] if group == "logger" else cfg[group]


def test_every_option_of_a_constructor_group_has_a_yaml_file_and_back():
    assert sorted(p.stem for p in (CONF / "optim").glob("*.yaml")) == sorted(OPTIMIZERS)
    assert sorted(p.stem for p in (CONF / "sched").glob("*.yaml")) == sorted(SCHEDULES)
    assert sorted(p.stem for p in (CONF / "norm").glob("*.yaml")) == sorted(NORMS)
    assert sorted(p.stem for p in (CONF / "model").glob("*.yaml")) == sorted(
        [*BUILTIN_MODELS, "custom"]
    )
    assert sorted(p.stem for p in (CONF / "logger").glob("*.yaml")) == sorted(LOGGER_ARGUMENTS)


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_each_options_composed_schema_is_its_constructors_signature(group, option):
    node = composed_group(group, option)
    constructor = constructor_of(group, option)
    if group == "model" and constructor is None:  # model=custom: checked when its factory is called
        assert OmegaConf.get_type(node) is dict
        return
    schema = OmegaConf.get_type(node)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    arguments = configurable(constructor) if constructor else {}
    named = [] if group == "logger" else ["name"]
    assert list(fields) == [*named, *arguments]  # no key declared anywhere else
    parameters = inspect.signature(constructor, eval_str=True).parameters if constructor else {}
    hints = {name: p.annotation for name, p in parameters.items()}
    for key, default in arguments.items():
        made = fields[key].default_factory() if callable(fields[key].default_factory) else None
        declared = fields[key].default if made is None else made
        expected = list(default) if made is not None else default
        assert declared == expected, key
        if fields[key].type is not typing.Any:  # Any: an annotation OmegaConf cannot check
            assert fields[key].type == hints[key], key
    assert set(node) == set(fields)  # the YAML file only chooses values


def declarations() -> dict[str, list[set[str]]]:
    """{module: the key sets it declares}: each dataclass's annotated fields, and each
    `schema(name, {table})` call's keys, anywhere in dlexp/."""
    found: dict[str, list[set[str]]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        module = str(path.relative_to(PACKAGE.parent))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                "dataclass" in ast.unparse(d) for d in node.decorator_list
            ):
                keys = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
                found.setdefault(module, []).append(keys)
            if isinstance(node, ast.Call) and ast.unparse(node.func) in (
                "schema",
                "make_dataclass",
            ):
                tables = [a for a in node.args if isinstance(a, ast.Dict)]
                for table in tables:
                    keys = {k.value for k in table.keys if isinstance(k, ast.Constant)}
                    found.setdefault(module, []).append(keys)
    return found


def test_no_group_options_keys_are_declared_twice_in_python():
    """A hand-written dataclass (or table) holding an option's keys would be a second
    declaration of their types and defaults; the constructors are the only one."""
    for group, option in OPTIONS:
        constructor = constructor_of(group, option)
        keys = set(configurable(constructor)) if constructor else set()
        if len(keys) < 2:  # a lone key name (eps, file) is too common to tell apart
            continue
        for module, declared in declarations().items():
            clashes = [d for d in declared if keys <= d]
            assert not clashes, f"{module} declares {group}={option}'s keys {sorted(keys)} again"


def test_top_level_keys_have_one_dataclass_whose_owned_types_come_from_their_owners():
    cfg = compose_train([])
    fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    assert set(cfg) == set(fields)
    loop_hints = typing.get_type_hints(LoopSchedule)
    backend_hints = typing.get_type_hints(BackendOptions)
    for key in LOOP_KEYS:
        assert fields[key] == loop_hints[key], key
    for key in (*BACKEND_KEYS, "label_smoothing"):
        assert fields[key] == backend_hints[key], key
    owners = {
        "dlexp/loop.py",
        "dlexp/backends/__init__.py",
        "dlexp/config/schema.py",
        "dlexp/compat/uva2019/course_flags.py",
    }  # the course scripts' own flags' defaults
    table_keys = set(fields) - {*LOOP_KEYS, *BACKEND_KEYS, "label_smoothing"}
    for module, declared in declarations().items():
        for keys in declared:
            overlap = keys & set(fields)
            if module in owners or len(overlap) < 3:  # a field named seed or device elsewhere
                continue
            raise AssertionError(f"{module} declares top-level keys {sorted(overlap)} again")
    schema_tables = declarations()["dlexp/config/schema.py"]
    assert sum(1 for t in schema_tables if table_keys <= t) == 1  # the TrainConfig table


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
def test_the_norm_layers_take_every_norm_key(option):
    composed = compose_train(["model=torch_mlp", f"norm={option}"]).norm
    layer = make_norm(option, 4, 1, **{k: v for k, v in composed.items() if k != "name"})
    if option != "none":  # the composed values reach the layer
        assert (layer.eps, layer.momentum) == (composed.eps, composed.momentum)


def test_a_wrong_type_or_unknown_key_is_still_refused_while_composing():
    from hydra.errors import HydraException

    for overrides in (["optim=adam", "optim.eps=abc"], ["sched=step", "sched.gammma=0.5"],
                      ["model=torch_mlp", "model.dropout=x"], ["model=convnet", "model.width=3"],
                      ["logger=[csv]", "logger.csv.path=x"]):  # fmt: skip
        with pytest.raises(HydraException):
            compose_train(overrides)


def test_the_numpy_path_composes_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys; from hydra import compose, initialize_config_module\n"
            "with initialize_config_module('dlexp.conf', version_base='1.3'):\n"
            "    compose('train', overrides=['logger=[tensorboard,csv]'])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
