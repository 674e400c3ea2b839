"""Build the loop's backend for a config: the model, its optimizer and the data in place."""

from __future__ import annotations

import inspect

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dlexp.config_checks import model_kwargs
from dlexp.data.prepare import CIFAR10Data
from dlexp.models.registry import ModelEntry


def optim_kwargs(cfg: DictConfig) -> dict:
    """The optim group's keys as keyword arguments of make_*_optimizer."""
    return OmegaConf.to_container(cfg.optim, resolve=True)


def build_backend(cfg: DictConfig, entry: ModelEntry, data: CIFAR10Data, rng: np.random.Generator):
    """A NumpyBackend or TorchBackend for `cfg`, chosen by the model's registry entry."""
    if entry.backend == "numpy":
        from dlexp.backends.numpy_backend import NumpyBackend, make_numpy_optimizer

        model = entry.factory(**model_kwargs(cfg), rng=rng)
        optimizer = make_numpy_optimizer(parameters=model.parameters(), **optim_kwargs(cfg))
        return NumpyBackend(model, optimizer, data, cfg.batch_size, cfg.eval_batch_size)

    from dlexp.backends.torch_backend import (
        TorchBackend,
        make_torch_optimizer,
        resolve_device,
        seed_torch,
    )
    from dlexp.nn.norm import norm_factory

    device = resolve_device(cfg.device)
    seed_torch(cfg.seed, cfg.deterministic)
    norm = norm_factory(cfg.norm.name, eps=cfg.norm.eps, momentum=cfg.norm.momentum)
    takes_norm = "norm" in inspect.signature(entry.factory).parameters
    model = entry.factory(**model_kwargs(cfg), **({"norm": norm} if takes_norm else {}))
    optimizer = make_torch_optimizer(parameters=model.parameters(), **optim_kwargs(cfg))
    return TorchBackend(model, optimizer, data, device, cfg.eval_batch_size, cfg.precision)
