"""The schema of conf/: typed dataclasses that Hydra checks every composed config against.

The YAML files hold the values (with their comments); these tables hold the types, one line a
key. A wrong type or an unknown key is refused by Hydra and OmegaConf while composing, before any
work starts. Ranges are not here: each constructor checks its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


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
NormConfig = schema("NormConfig", {"name": str, "eps": float, "momentum": float})
SGDConfig = schema("SGDConfig", {
    "name": str, "lr": float, "momentum": float, "nesterov": bool, "weight_decay": float,
})  # fmt: skip
AdamConfig = schema("AdamConfig", {  # also AdamW's
    "name": str, "lr": float, "betas": list[float], "eps": float, "weight_decay": float,
})  # fmt: skip
NoScheduleConfig = schema("NoScheduleConfig", {"name": str})
CosineConfig = schema("CosineConfig", {"name": str, "warmup_steps": int, "eta_min": float})
OneCycleConfig = schema("OneCycleConfig", {
    "name": str, "pct_start": float, "div_factor": float, "final_div_factor": float,
})  # fmt: skip
StepConfig = schema("StepConfig", {"name": str, "step_size": int, "gamma": float})
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
# of their YAML files extends its own schema with `- /<name>@_here_`; data and norm are typed above.
SCHEMAS = (
    ("train_schema", TrainConfig),
    ("optim_sgd_schema", SGDConfig),
    ("optim_adam_schema", AdamConfig),
    ("sched_none_schema", NoScheduleConfig),
    ("sched_cosine_schema", CosineConfig),
    ("sched_onecycle_schema", OneCycleConfig),
    ("sched_step_schema", StepConfig),
)


def register_schemas() -> None:
    """Put every schema in Hydra's ConfigStore (idempotent); call before composing conf/."""
    store = ConfigStore.instance()
    for name, node in SCHEMAS:
        store.store(name=name, node=node)
