"""The schema of conf/: typed dataclasses that Hydra checks every composed config against.

The YAML files hold the values (with their comments). The `optim` and `sched` options' schemas
are their NumPy constructors' signatures (types and defaults), generated here; the other keys'
types are in the tables below, one line a key. A wrong type or an unknown key is refused by Hydra
and OmegaConf while composing, before any work starts. Ranges are not here: each constructor
checks its own.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from dlexp.nn.norm_spec import norm_arguments
from dlexp.numpy_nn import OPTIMIZERS, SCHEDULE_CLASSES


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


RUNTIME_ARGUMENTS = ("self", "parameters", "optimizer", "total_steps")  # given by the run


def constructor_schema(constructor, class_name: str | None = None) -> type:
    """`name: str`, then the constructor's configurable arguments with their annotations and
    defaults (none: the YAML file must give it). Errors name it `<class>Config`."""
    fields = [("name", str, dataclasses.field(default=MISSING))]
    for p in inspect.signature(constructor, eval_str=True).parameters.values():
        if p.name in RUNTIME_ARGUMENTS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = MISSING if p.default is p.empty else p.default
        fields.append((p.name, p.annotation, dataclasses.field(default=default)))
    return dataclasses.make_dataclass(f"{class_name or constructor.__name__}Config", fields)


NormConfig = constructor_schema(norm_arguments, "Norm")  # every norm option's keys
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
TrainConfig = schema("TrainConfig", {
    # The model's own arguments are checked against its factory's signature
    # (dlexp.config.arguments), so a model from a user's package may take keys not listed here.
    "model": dict,
    "optim": Any,  # one of the optimizer schemas above, chosen by the group option
    "sched": Any,
    "norm": NormConfig,
    "data": DataConfig,
    "search": SearchConfig,
    "early_stop": EarlyStopConfig,
    "checkpoint": CheckpointConfig,
    "logger": dict,  # one entry per selected logger
    "resume": str | None,
    "task_name": str,
    "seed": int,
    "max_steps": int,
    "batch_size": int,
    "eval_freq": int,
    "log_freq": int,
    "eval_batch_size": int,
    "device": str,
    "precision": str,
    "compile": bool,
    "channels_last": bool,
    "deterministic": bool,
    "label_smoothing": float,
    "optimized_metric": str,
    "progress": bool,
    "output_dir": str,
})  # fmt: skip

# (name in the ConfigStore, dataclass). The optim and sched options differ in their keys, so each
# of their YAML files extends its own schema with `- /<group>_<option>_schema@_here_`; data and
# norm are typed above.
SCHEMAS = (
    ("train_schema", TrainConfig),
    *((f"optim_{name}_schema", constructor_schema(c)) for name, c in OPTIMIZERS.items()),
    ("sched_none_schema", schema("NoScheduleConfig", {"name": str})),
    *((f"sched_{name}_schema", constructor_schema(c)) for name, c in SCHEDULE_CLASSES.items()),
)


def register_schemas() -> None:
    """Put every schema in Hydra's ConfigStore (idempotent); call before composing conf/."""
    store = ConfigStore.instance()
    for name, node in SCHEMAS:
        store.store(name=name, node=node)
