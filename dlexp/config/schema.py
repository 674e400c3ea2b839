"""The schema of conf/: typed dataclasses that Hydra checks every composed config against.

The YAML files hold the values (with their comments); these dataclasses hold the types. A wrong
type or an unknown key is refused by Hydra and OmegaConf while composing, before any work starts.
Ranges are not here: each constructor checks its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class DataConfig:
    root: str | None = MISSING  # null: $DLEXP_DATA, else ~/.cache/dlexp/data
    download: bool = MISSING
    url: str = MISSING
    md5: str | None = MISSING
    validation_size: int = MISSING
    preprocess: str = MISSING
    cache: bool = MISSING
    train_subset: int | None = MISSING
    eval_subset: int | None = MISSING
    augment: str = MISSING  # none | flip | flip_crop (training batches only)


@dataclass
class NormConfig:
    name: str = MISSING
    eps: float = MISSING
    momentum: float = MISSING


@dataclass
class SGDConfig:
    name: str = MISSING
    lr: float = MISSING
    momentum: float = MISSING
    nesterov: bool = MISSING
    weight_decay: float = MISSING


@dataclass
class AdamConfig:  # also AdamW's
    name: str = MISSING
    lr: float = MISSING
    betas: list[float] = MISSING
    eps: float = MISSING
    weight_decay: float = MISSING


@dataclass
class NoScheduleConfig:
    name: str = MISSING


@dataclass
class CosineConfig:
    name: str = MISSING
    warmup_steps: int = MISSING
    eta_min: float = MISSING


@dataclass
class OneCycleConfig:
    name: str = MISSING
    pct_start: float = MISSING
    div_factor: float = MISSING
    final_div_factor: float = MISSING


@dataclass
class StepConfig:
    name: str = MISSING
    step_size: int = MISSING
    gamma: float = MISSING


@dataclass
class SearchConfig:
    """Set by dlexp's Optuna sweeper on each trial's command line; null outside a search."""

    storage: str | None = MISSING  # an Optuna storage URL
    study_name: str | None = MISSING
    trial: int | None = MISSING  # the trial's number in the study


@dataclass
class EarlyStopConfig:
    patience: int | None = MISSING  # evaluations without improvement; null: never stop early


@dataclass
class CheckpointConfig:
    every: int | None = MISSING  # steps; null: at every evaluation; 0: only at the end or a stop


@dataclass
class TrainConfig:
    # The model's own arguments are checked against its factory's signature
    # (dlexp.config.arguments), so a model from a user's package may take keys that this
    # schema does not list.
    model: dict[str, Any] = field(default_factory=dict)
    optim: Any = MISSING  # one of the optimizer schemas above, chosen by the group option
    sched: Any = MISSING
    norm: NormConfig = MISSING
    data: DataConfig = MISSING
    search: SearchConfig = MISSING
    early_stop: EarlyStopConfig = MISSING
    checkpoint: CheckpointConfig = MISSING
    logger: dict[str, Any] = field(default_factory=dict)  # one entry per selected logger
    resume: str | None = MISSING
    task_name: str = MISSING
    seed: int = MISSING
    max_steps: int = MISSING
    batch_size: int = MISSING
    eval_freq: int = MISSING
    log_freq: int = MISSING
    eval_batch_size: int = MISSING
    device: str = MISSING
    precision: str = MISSING
    compile: bool = MISSING
    channels_last: bool = MISSING
    deterministic: bool = MISSING
    label_smoothing: float = MISSING
    optimized_metric: str = MISSING
    progress: bool = MISSING
    output_dir: str = MISSING


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
