"""Checks on a composed config, run before any work starts; each failure is one clear line."""

from __future__ import annotations

import inspect

from omegaconf import DictConfig, OmegaConf

from dlexp.data.prepare import PREPROCESSING
from dlexp.errors import ConfigError
from dlexp.models.registry import ModelEntry, get_model_entry
from dlexp.norm_names import NORMS

CIFAR10_TRAIN_SIZE = 50000
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = {"numpy": ("sgd", "adam"), "torch": ("sgd", "adam")}
OPTIMIZABLE_METRICS = ("val/accuracy", "val/loss", "train/accuracy", "train/loss")


def model_kwargs(cfg: DictConfig) -> dict:
    """The model group's keys except `name`, as plain Python values; an int n_hidden becomes [n]."""
    kwargs = OmegaConf.to_container(cfg.model, resolve=True)
    kwargs.pop("name")
    if isinstance(kwargs.get("n_hidden"), int):
        kwargs["n_hidden"] = [kwargs["n_hidden"]]
    return kwargs


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_model_args(entry: ModelEntry, kwargs: dict) -> None:
    accepted = set(inspect.signature(entry.factory).parameters) - {"rng", "norm"}
    unknown = sorted(set(kwargs) - accepted)
    _require(
        not unknown,
        f"model {entry.name} has no argument(s) {', '.join(unknown)}; "
        f"it takes {', '.join(sorted(accepted))}",
    )
    hidden = kwargs.get("n_hidden", [])
    _require(
        isinstance(hidden, list) and all(isinstance(h, int) and h > 0 for h in hidden),
        f"model.n_hidden must be a list of positive integers (or []), got {hidden}",
    )
    _require(
        kwargs.get("neg_slope", 0) >= 0,
        f"model.neg_slope must be >= 0, got {kwargs.get('neg_slope')}",
    )
    _require(
        0 <= kwargs.get("dropout", 0) < 1,
        f"model.dropout must be in [0, 1), got {kwargs.get('dropout')}",
    )


def _check_schedule(cfg: DictConfig) -> None:
    _require(cfg.max_steps > 0, f"max_steps must be > 0, got {cfg.max_steps}")
    _require(cfg.eval_freq > 0, f"eval_freq must be > 0, got {cfg.eval_freq}")
    _require(cfg.log_freq > 0, f"log_freq must be > 0, got {cfg.log_freq}")
    _require(cfg.eval_batch_size > 0, f"eval_batch_size must be > 0, got {cfg.eval_batch_size}")
    val = cfg.data.validation_size
    _require(
        0 <= val < CIFAR10_TRAIN_SIZE,
        f"data.validation_size must be in [0, {CIFAR10_TRAIN_SIZE}), got {val}",
    )
    train_size = CIFAR10_TRAIN_SIZE - val
    _require(
        1 <= cfg.batch_size <= train_size,
        f"batch_size must be in [1, {train_size}] (the training split), got {cfg.batch_size}",
    )
    _require(
        cfg.data.preprocess in PREPROCESSING,
        f"data.preprocess must be one of {', '.join(PREPROCESSING)}, got {cfg.data.preprocess!r}",
    )
    metric = cfg.optimized_metric
    _require(
        not metric.startswith("test/"),
        f"optimized_metric {metric} is a test metric: test data is reported, never optimised; "
        f"use val/accuracy",
    )
    _require(
        metric in OPTIMIZABLE_METRICS,
        f"optimized_metric must be one of {', '.join(OPTIMIZABLE_METRICS)}, got {metric}",
    )
    _require(
        not (metric.startswith("val/") and val == 0),
        f"optimized_metric {metric} needs a validation split: set data.validation_size > 0",
    )


def _check_backend(cfg: DictConfig, entry: ModelEntry) -> None:
    _require(
        cfg.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}"
    )
    _require(
        cfg.precision in PRECISIONS,
        f"precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}",
    )
    _require(
        cfg.norm.name in NORMS, f"unknown norm {cfg.norm.name!r}; known norms: {', '.join(NORMS)}"
    )
    optimizers = OPTIMIZERS[entry.backend]
    _require(
        cfg.optim.name in optimizers,
        f"optimizer {cfg.optim.name!r} is not available for {entry.name} ({entry.backend} backend);"
        f" choose one of {', '.join(optimizers)}",
    )
    _require(cfg.optim.lr > 0, f"optim.lr must be > 0, got {cfg.optim.lr}")
    if entry.backend == "numpy":
        _require(
            cfg.device in ("auto", "cpu"),
            f"{entry.name} is a NumPy model and runs on the CPU only; "
            f"use device=cpu (got {cfg.device})",
        )
        _require(
            cfg.norm.name == "none",
            f"{entry.name} has no norm layers; use norm=none (got norm={cfg.norm.name})",
        )
        _require(cfg.precision == "fp32", f"{entry.name} supports precision=fp32 only")
    elif cfg.norm.name != "none":
        accepts_norm = "norm" in inspect.signature(entry.factory).parameters
        _require(accepts_norm, f"model {entry.name} takes no norm layer; use norm=none")


def check_config(cfg: DictConfig) -> ModelEntry:
    """Validate all that needs no data; returns the model's registry entry."""
    entry = get_model_entry(cfg.model.name)
    _check_model_args(entry, model_kwargs(cfg))
    _check_schedule(cfg)
    _check_backend(cfg, entry)
    return entry
