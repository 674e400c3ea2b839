"""Build the loop's backend for a config: the model, its optimizer and the data in place."""

from __future__ import annotations

import inspect

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dlexp.config_checks import model_kwargs
from dlexp.data.prepare import CIFAR10Data
from dlexp.models.registry import ModelEntry


def make_optimizer(
    sgd,
    adam,
    parameters,
    name: str,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    betas=(0.9, 0.999),
    eps: float = 1e-8,
):
    """An optimizer from the optim group's keys; `sgd`/`adam` are torch.optim's classes or
    dlexp.numpy_nn's, which take the same arguments."""
    if name == "sgd":
        return sgd(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return adam(parameters, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


def optim_kwargs(cfg: DictConfig) -> dict:
    """The optim group's keys as keyword arguments of make_optimizer."""
    return OmegaConf.to_container(cfg.optim, resolve=True)


def build_backend(cfg: DictConfig, entry: ModelEntry, data: CIFAR10Data, rng: np.random.Generator):
    """A NumpyBackend or TorchBackend for `cfg`, chosen by the model's registry entry."""
    if entry.backend == "numpy":
        from dlexp.backends.numpy_backend import NumpyBackend
        from dlexp.numpy_nn import SGD, Adam

        model = entry.factory(**model_kwargs(cfg), rng=rng)
        optimizer = make_optimizer(SGD, Adam, model.parameters(), **optim_kwargs(cfg))
        return NumpyBackend(model, optimizer, data, cfg.batch_size, cfg.eval_batch_size)

    import torch

    from dlexp.backends.torch_backend import TorchBackend, resolve_device, seed_torch
    from dlexp.nn.norm import norm_factory

    device = resolve_device(cfg.device)
    seed_torch(cfg.seed, cfg.deterministic)
    norm = norm_factory(cfg.norm.name, eps=cfg.norm.eps, momentum=cfg.norm.momentum)
    takes_norm = "norm" in inspect.signature(entry.factory).parameters
    model = entry.factory(**model_kwargs(cfg), **({"norm": norm} if takes_norm else {}))
    optimizer = make_optimizer(
        torch.optim.SGD, torch.optim.Adam, model.parameters(), **optim_kwargs(cfg)
    )
    return TorchBackend(model, optimizer, data, device, cfg.eval_batch_size, cfg.precision)
