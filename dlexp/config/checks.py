"""The rules that cross config groups, checked before anything is built; each failure is one line.

Types and unknown keys are the schema's job (dlexp/config/schema.py), and ranges are each
constructor's (dlexp/build.py reports them). Only what no single constructor can see is here.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from dlexp.distributed.process_group import distributed_arguments
from dlexp.errors import ConfigError
from dlexp.models.registry import ModelEntry
from dlexp.run.loggers import check_logger_config
from dlexp.run.record import metric_direction

LOOP_METRICS = ("val/accuracy", "val/loss", "train/accuracy", "train/loss")  # what fit() selects on


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_metric(cfg: DictConfig) -> None:
    metric = cfg.optimized_metric
    metric_direction(metric)  # refuses a test metric
    _require(
        metric in LOOP_METRICS,
        f"optimized_metric must be one of {', '.join(LOOP_METRICS)}, got {metric}",
    )
    _require(
        not (metric.startswith("val/") and cfg.data.validation_size == 0),
        f"optimized_metric {metric} needs a validation split: set data.validation_size > 0, "
        f"or optimized_metric=train/accuracy",
    )
    _require(
        cfg.early_stop.patience is None or metric.startswith("val/"),
        f"early_stop.patience counts evaluations of a val metric; optimized_metric is {metric}",
    )


def _check_backend(cfg: DictConfig, entry: ModelEntry) -> None:
    if entry.backend == "numpy":
        _require(
            cfg.device in ("auto", "cpu"),
            f"{entry.name} is a NumPy model and runs on the CPU only; "
            f"use device=cpu (got device={cfg.device})",
        )
        _require(
            cfg.norm.name == "none",
            f"{entry.name} has no norm layers; use norm=none (got norm={cfg.norm.name})",
        )
        _require(
            cfg.precision in ("fp32", "auto"),
            f"{entry.name} computes in float32 only; use precision=fp32 or auto",
        )
        _require(
            not cfg.compile and not cfg.channels_last,
            f"{entry.name} is a NumPy model: compile and channels_last are for torch models",
        )
        _require(
            cfg.label_smoothing == 0,
            f"{entry.name} trains with plain cross-entropy; label_smoothing is for torch models",
        )
    elif cfg.norm.name != "none":
        _require(
            "norm" in cfg.model,
            f"model {entry.name} takes no norm layer (its config has no model.norm); "
            f"use norm=none (got norm={cfg.norm.name})",
        )


def _check_data_parallel(cfg: DictConfig, entry: ModelEntry, world_size: int) -> None:
    """What does not fit a run on several ranks (docs/distributed.md)."""
    distributed_arguments(**(OmegaConf.select(cfg, "distributed") or {}))
    if world_size < 2:
        return
    _require(
        entry.backend != "numpy",
        f"{entry.name} is a NumPy model and trains in one process; data-parallel training "
        f"({world_size} ranks) is for torch models",
    )
    _require(
        cfg.batch_size % world_size == 0,
        f"batch_size {cfg.batch_size} (the global batch) does not split evenly among "
        f"{world_size} ranks: use a multiple of {world_size}",
    )
    _require(
        not cfg.compile,
        f"compile=true is not supported in data-parallel training ({world_size} ranks); "
        f"use compile=false",
    )


def check_device_rules(cfg: DictConfig, device_type: str, world_size: int = 1) -> None:
    """The rules that need the resolved device (device=auto), checked once it is known."""
    norm = cfg.get("norm") or {}
    _require(
        world_size < 2
        or not (norm.get("name") == "torch_bn" and norm.get("sync") and device_type != "cuda"),
        f"norm=torch_bn norm.sync=true is nn.SyncBatchNorm, which synchronises on CUDA only "
        f"(this run is on {device_type}); use norm=custom_bn or norm=autograd_bn with "
        f"norm.sync=true",
    )


def check_config(cfg: DictConfig, entry: ModelEntry, world_size: int = 1) -> None:
    """Validate the rules that span groups: the model's backend against device, norm and metric,
    and what data-parallel training on `world_size` ranks allows."""
    _check_metric(cfg)
    _check_backend(cfg, entry)
    _check_data_parallel(cfg, entry, world_size)
    check_logger_config(cfg)
