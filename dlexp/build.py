"""The build path of a run, in order: the seeded generators, model, optimizer, schedule; then the
data and, given it, the backend.

Each step calls a constructor with its config group's keys (config keys equal constructor
arguments), so each constructor's own checks are the range rules, reported as one line.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dlexp.backends import BackendOptions
from dlexp.config.arguments import checked_call
from dlexp.config.checks import check_config, check_device_rules
from dlexp.data import load_cifar10
from dlexp.data.prepare import CIFAR10Data
from dlexp.distributed.process_group import Ranks, joined_ranks, resolve_backend
from dlexp.errors import ConfigError
from dlexp.models.registry import ModelEntry, get_model_entry


@dataclass
class Parts:
    """What a run builds before it reads any data."""

    entry: ModelEntry
    backend_module: ModuleType  # dlexp.backends.numpy_backend or .torch_backend
    device: Any  # "cpu" for NumPy, a torch.device for torch
    model: Any
    optimizer: Any
    scheduler: Any  # None for sched=none
    options: BackendOptions  # how the backend trains and evaluates


def group_arguments(node: DictConfig) -> dict:
    """A config group's keys except `name`, as plain Python values."""
    kwargs = OmegaConf.to_container(node, resolve=True)
    kwargs.pop("name", None)
    return kwargs


def model_arguments(cfg: DictConfig, entry: ModelEntry) -> dict:
    """The model group's keys except `name`; for the built-in MLPs an int n_hidden becomes [n],
    as the course's --dnn_hidden_units flag allowed."""
    kwargs = group_arguments(cfg.model)
    if isinstance(kwargs.get("n_hidden"), int) and entry.name in ("numpy_mlp", "torch_mlp"):
        kwargs["n_hidden"] = [kwargs["n_hidden"]]
    return kwargs


def make_optimizer(table: dict, optim: DictConfig, model, backend: str):
    """`table[optim.name](model.parameters(), **optim's other keys)`."""
    if optim.name not in table:
        raise ConfigError(
            f"optimizer {optim.name!r} is not available on the {backend} backend; "
            f"choose one of {', '.join(sorted(table))}"
        )
    kwargs = group_arguments(optim)
    betas = kwargs.get("betas")
    takes_betas = "betas" in inspect.signature(table[optim.name]).parameters
    if takes_betas and betas is not None and not (isinstance(betas, list) and len(betas) == 2):
        # torch's Adam would fail with an IndexError; an optimizer without betas refuses the key
        raise ConfigError(f"optim.betas must be two values, got {betas}")
    factory = functools.partial(table[optim.name], model.parameters())
    return checked_call(factory, f"optim ({optim.name})", kwargs)


def build_parts(
    cfg: DictConfig, model_rng: np.random.Generator, ranks: Ranks | None = None
) -> Parts:
    """config -> model -> optimizer -> schedule; every config error surfaces here.

    `ranks` is this process's place in a data-parallel run (None: one process); the
    self-launching form's own process passes the ranks it is about to start, to refuse what
    does not fit before any of them starts."""
    entry = get_model_entry(cfg.model.name)
    check_config(cfg, entry, 1 if ranks is None else ranks.world_size)
    options = backend_options(cfg)  # checks the backends' own keys
    backend_module = importlib.import_module(f"dlexp.backends.{entry.backend}_backend")
    device = backend_module.prepare_device(
        cfg.device, cfg.precision, cfg.seed, cfg.deterministic, ranks
    )
    world_size = 1 if ranks is None else ranks.world_size
    check_device_rules(cfg, getattr(device, "type", device), world_size)  # NumPy's: "cpu"
    if ranks is not None:
        ranks = dataclasses.replace(ranks, backend=collective_backend(cfg, device.type, ranks))
    options = dataclasses.replace(options, device=device, ranks=ranks)
    runtime = {"rng": model_rng} if entry.backend == "numpy" else {}  # torch was seeded above
    model = checked_call(
        entry.factory, f"model {entry.name}", model_arguments(cfg, entry), **runtime
    )
    if not callable(getattr(model, "parameters", None)):
        raise ConfigError(f"model {entry.name} returned a {type(model).__name__}, not a model")
    optimizer = make_optimizer(backend_module.OPTIMIZERS, cfg.optim, model, entry.backend)
    scheduler = checked_call(
        backend_module.make_scheduler,
        f"sched ({cfg.sched.name})",
        {"name": cfg.sched.name, **group_arguments(cfg.sched)},
        optimizer=optimizer,
        total_steps=cfg.max_steps,
    )
    return Parts(entry, backend_module, device, model, optimizer, scheduler, options)


def collective_backend(cfg: DictConfig, device_type: str, ranks: Ranks) -> str:
    """The library that reduces this run's tensors: distributed.backend for the device; a group
    joined before the config was read (torchrun) reduces CUDA tensors with NCCL if it has it."""
    wanted = resolve_backend(
        OmegaConf.select(cfg, "distributed.backend", default="auto"), device_type
    )
    if joined_ranks() is None:
        return wanted
    return "nccl" if device_type == "cuda" and ranks.backend == "nccl" else "gloo"


def load_run_data(cfg: DictConfig):
    d = cfg.data
    return load_cifar10(
        d.root,
        download=d.download,
        validation_size=d.validation_size,
        preprocess=d.preprocess,
        url=d.url,
        md5=d.md5,
        cache_dir="default" if d.cache else None,
        train_subset=d.train_subset,
        eval_subset=d.eval_subset,
    )


def seed_generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for model init and batch order, both derived from `seed`."""
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    model_seq, sampler_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(model_seq), np.random.default_rng(sampler_seq)


def augment_generator(seed: int) -> np.random.Generator:
    """The generator of the training batches' flips and crops: a third child of `seed` (the
    first two, and so the model and batch order, are the same with augmentation or without)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])


def make_backend(
    parts: Parts,
    data: CIFAR10Data,
    cfg: DictConfig,
    augment_rng: np.random.Generator | None = None,  # needed when data.augment is not none
):
    """The loop's backend: the model, optimizer and schedule with the data in place."""
    options = dataclasses.replace(parts.options, augment_rng=augment_rng)
    return parts.backend_module.Backend(
        parts.model, parts.optimizer, parts.scheduler, data, options
    )


def backend_options(cfg: DictConfig) -> BackendOptions:
    """The run's BackendOptions, on the CPU until build_parts resolves the device."""
    return BackendOptions(
        batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size,
        augment=cfg.data.augment,
        precision=cfg.precision,
        label_smoothing=cfg.label_smoothing,
        compile=cfg.compile,
        channels_last=cfg.channels_last,
    )
