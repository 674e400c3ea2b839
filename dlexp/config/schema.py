"""The schema of conf/: typed dataclasses that Hydra checks every composed config against.

The YAML files hold the values (with their comments). The `optim`, `sched`, `norm`, `model` and
`logger` options' schemas are their constructors' (or spec functions') signatures, types and
defaults, generated here; the top-level keys' types are in the tables below, one line a key. A
wrong type or an unknown key is refused while composing, before any work starts. Ranges are not
here: each constructor checks its own.

Hydra reads the schemas through dlexp's config source (dlexp/config/hydra_plugin), which builds
each one when a config names it: a torch model's schema imports torch, and only its runs pay.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from omegaconf import MISSING

from dlexp.backends import BackendOptions
from dlexp.config.arguments import checkable
from dlexp.distributed.process_group import distributed_arguments
from dlexp.loop import LoopSchedule
from dlexp.models.registry import BUILTIN_MODELS, get_model_entry
from dlexp.nn.norm_spec import norm_arguments
from dlexp.numpy_nn import OPTIMIZERS, SCHEDULE_CLASSES
from dlexp.run.loggers import LOGGER_ARGUMENTS


def schema(name: str, types: dict[str, Any]) -> type:
    """A dataclass named `name` (errors say "Key 'x' not in 'SGDConfig'") whose keys have these
    types and no default: the YAML files give every value."""
    fields = [
        (key, kind, dataclasses.field(default_factory=dict))
        if kind is dict
        else (key, kind, dataclasses.field(default=MISSING))
        for key, kind in types.items()
    ]
    return dataclasses.make_dataclass(name, fields)


# given by the run, never by a config: the model's generator, the optimizer's parameters, ...
RUNTIME_ARGUMENTS = (
    "self", "rng", "parameters", "optimizer", "total_steps", "out", "purge_step", "hparams",
)  # fmt: skip


def _field(annotation, default) -> tuple[Any, dataclasses.Field]:
    """A field for one argument; an annotation OmegaConf cannot check (a layer factory) is Any."""
    if not checkable(annotation):
        annotation = Any
    if isinstance(default, (list, tuple)):
        return annotation, dataclasses.field(default_factory=lambda: list(default))
    return annotation, dataclasses.field(default=default)


def constructor_schema(constructor, class_name: str | None = None, named: bool = True) -> type:
    """`name: str` (the option's name; not for loggers, keyed by theirs), then the constructor's
    configurable arguments with their annotations and defaults (none: the YAML file gives it)."""
    fields = [("name", str, dataclasses.field(default=MISSING))] if named else []
    for p in inspect.signature(constructor, eval_str=True).parameters.values():
        if p.name in RUNTIME_ARGUMENTS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = MISSING if p.default is p.empty else p.default
        annotation = Any if p.annotation is p.empty else p.annotation
        fields.append((p.name, *_field(annotation, default)))
    return dataclasses.make_dataclass(f"{class_name or constructor.__name__}Config", fields)


NormConfig = constructor_schema(norm_arguments, "Norm")  # every norm option's keys
DistributedConfig = constructor_schema(distributed_arguments, "Distributed", named=False)
DataConfig = schema("DataConfig", {
    "root": str | None,  # null: $DLEXP_DATA, else ~/.cache/dlexp/data
    "download": bool,
    "url": str,
    "md5": str | None,
    "validation_size": int,
    "preprocess": str,
    "cache": bool,
    "train_subset": int | None,
    "eval_subset": int | None,
    "augment": str,  # none | flip | flip_crop (training batches only)
})  # fmt: skip
SearchConfig = schema("SearchConfig", {  # set by the Optuna sweeper per trial; null otherwise
    "storage": str | None,  # an Optuna storage URL
    "study_name": str | None,
    "trial": int | None,  # the trial's number in the study
})  # fmt: skip
EarlyStopConfig = schema("EarlyStopConfig", {
    "patience": int | None,  # evaluations without improvement; null: never stop early
})  # fmt: skip
CheckpointConfig = schema("CheckpointConfig", {
    "every": int | None,  # steps; null: at every evaluation; 0: only at the end or a stop
})  # fmt: skip


def owned_types(owner: type, keys: tuple[str, ...]) -> dict[str, Any]:
    """The types of top-level keys that a runtime class owns (takes and range-checks)."""
    hints = typing.get_type_hints(owner)
    return {key: hints[key] for key in keys}


# Top-level keys that a runtime class owns take its annotations; the table declares the rest.
LOOP_KEYS = ("max_steps", "batch_size", "eval_freq", "log_freq", "eval_batch_size")  # LoopSchedule
BACKEND_KEYS = ("precision", "compile", "channels_last")  # BackendOptions, with label_smoothing
TrainConfig = schema("TrainConfig", {
    "model": Any,  # the chosen model's schema (model=custom: its factory checks its keys)
    "optim": Any,  # the chosen optimizer's schema, below
    "sched": Any,
    "norm": NormConfig,
    "data": DataConfig,
    "search": SearchConfig,
    "early_stop": EarlyStopConfig,
    "checkpoint": CheckpointConfig,
    "distributed": DistributedConfig,  # data-parallel training (docs/distributed.md)
    "logger": dict,  # one entry per selected logger, each with its schema
    "resume": str | None,
    "task_name": str,
    "seed": int,
    **owned_types(LoopSchedule, LOOP_KEYS),
    "device": str,
    **owned_types(BackendOptions, BACKEND_KEYS),
    "deterministic": bool,
    **owned_types(BackendOptions, ("label_smoothing",)),
    "optimized_metric": str,
    "progress": bool,
    "output_dir": str,
})  # fmt: skip


def _model_schema(name: str) -> type:
    return constructor_schema(get_model_entry(name).factory, f"model_{name}")


def _logger_schema(name: str) -> type:
    return constructor_schema(LOGGER_ARGUMENTS[name], f"logger_{name}", named=False)


# {name Hydra knows it by: the schema's builder}. The optim, sched, model and logger options differ
# in their keys, so each of their YAML files extends its own schema (optim/sgd.yaml:
# `- /optim_sgd_schema@_here_`); model=custom has none: its keys are its factory's, checked when it
# is called (dlexp.config.arguments).
SCHEMAS: dict[str, Callable[[], type]] = {
    "train_schema": lambda: TrainConfig,
    **{
        f"optim_{n}_schema": functools.partial(constructor_schema, c) for n, c in OPTIMIZERS.items()
    },
    "sched_none_schema": lambda: schema("NoScheduleConfig", {"name": str}),
    **{
        f"sched_{n}_schema": functools.partial(constructor_schema, c)
        for n, c in SCHEDULE_CLASSES.items()
    },
    **{f"model_{n}_schema": functools.partial(_model_schema, n) for n in BUILTIN_MODELS},
    **{f"logger_{n}_schema": functools.partial(_logger_schema, n) for n in LOGGER_ARGUMENTS},
}
