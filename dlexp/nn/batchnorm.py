"""Batch normalisation written two ways (seed §3): with autograd, and with a manual backward.

Both take (N, C) or (N, C, H, W); for the latter, statistics run over N, H and W. Both match
nn.BatchNorm1d/2d: biased variance to normalise, unbiased variance in `running_var`, and
running = (1 - momentum) * running + momentum * batch.
"""

from __future__ import annotations

import torch
from torch import nn


def _reduce_dims(x: torch.Tensor) -> tuple[int, ...]:
    return (0,) if x.dim() == 2 else (0, 2, 3)


def _per_channel(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a (C,) tensor to broadcast against x: (1, C) or (1, C, 1, 1)."""
    return t.view(1, -1) if x.dim() == 2 else t.view(1, -1, 1, 1)


def _update_running(running_mean, running_var, mean, var, count: int, momentum: float) -> None:
    """nn.BatchNorm's running-stat update, with the unbiased variance."""
    with torch.no_grad():
        running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
        unbiased = var.detach() * (count / max(count - 1, 1))
        running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)


class BatchNormFunction(torch.autograd.Function):
    """Batch norm with a hand-written backward (docs/backprop.md §3.2a).

    apply(x, gamma, beta, eps=1e-5, running_mean=None, running_var=None, momentum=0.1,
    training=True). In training mode the batch statistics normalise and, when running buffers
    are given, update them in place; in eval mode the running statistics normalise.
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, eps=1e-5, running_mean=None, running_var=None,
                momentum=0.1, training=True):  # fmt: skip
        dims = _reduce_dims(x)
        if training:
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)  # the biased variance normalises
            if running_mean is not None:
                _update_running(running_mean, running_var, mean, var, x.numel() // x.shape[1],
                                momentum)  # fmt: skip
        else:
            mean, var = running_mean, running_var
        inv_std = torch.rsqrt(var + eps)  # (C,)
        x_hat = (x - _per_channel(mean, x)) * _per_channel(inv_std, x)
        out = x_hat * _per_channel(gamma, x) + _per_channel(beta, x)
        ctx.training = training
        ctx.save_for_backward(x_hat, gamma, inv_std)  # only what backward reads
        return out

    @staticmethod
    def backward(ctx, dout):
        x_hat, gamma, inv_std = ctx.saved_tensors
        need_x, need_gamma, need_beta = ctx.needs_input_grad[:3]
        dims = _reduce_dims(dout)
        dx = dgamma = dbeta = None
        if need_x or need_gamma:
            dgamma_full = (dout * x_hat).sum(dim=dims)  # (C,)
        if need_x or need_beta:
            dbeta_full = dout.sum(dim=dims)  # (C,)
        if need_x:
            scale = _per_channel(gamma * inv_std, dout)
            if ctx.training:
                count = dout.numel() // dout.shape[1]  # m = N (or N*H*W)
                dx = scale * (dout - (_per_channel(dbeta_full, dout)
                                      + x_hat * _per_channel(dgamma_full, dout)) / count)  # fmt: skip
            else:  # running statistics are constants
                dx = scale * dout
        if need_gamma:
            dgamma = dgamma_full
        if need_beta:
            dbeta = dbeta_full
        return dx, dgamma, dbeta, None, None, None, None, None


class _BatchNormBase(nn.Module):
    """γ, β, running statistics and the input-shape check shared by both custom norms."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"{type(self).__name__} needs num_features >= 1, got {num_features}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))  # γ
        self.bias = nn.Parameter(torch.zeros(num_features))  # β
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__} expects input (N, {self.num_features}) or "
                f"(N, {self.num_features}, H, W), got {tuple(x.shape)}"
            )
        if self.training and x.numel() // x.shape[1] < 2:
            raise ValueError(f"{type(self).__name__} needs more than one value per channel to train")

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class AutogradBatchNorm(_BatchNormBase):
    """Batch norm from differentiable torch ops; autograd derives the backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if self.training:
            dims = _reduce_dims(x)
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            _update_running(self.running_mean, self.running_var, mean, var,
                            x.numel() // x.shape[1], self.momentum)  # fmt: skip
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - _per_channel(mean, x)) / torch.sqrt(_per_channel(var, x) + self.eps)
        return x_hat * _per_channel(self.weight, x) + _per_channel(self.bias, x)


class ManualBatchNorm(_BatchNormBase):
    """Batch norm through BatchNormFunction and its hand-written backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return BatchNormFunction.apply(x, self.weight, self.bias, self.eps, self.running_mean,
                                       self.running_var, self.momentum, self.training)  # fmt: skip


# The seed's names (custom_batchnorm.py), with its signatures.
class CustomBatchNormAutograd(AutogradBatchNorm):
    """Seed §3.1: `CustomBatchNormAutograd(n_neurons, eps=1e-5)`."""

    def __init__(self, n_neurons: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(n_neurons, eps=eps, momentum=momentum)


class CustomBatchNormManualFunction(BatchNormFunction):
    """Seed §3.2b. Course code may instantiate it as `CustomBatchNormManualFunction(n_neurons)`."""

    def __init__(self, n_neurons: int | None = None, eps: float = 1e-5):
        super().__init__()
        self.n_neurons, self.eps = n_neurons, eps


class CustomBatchNormManualModule(ManualBatchNorm):
    """Seed §3.2c: `CustomBatchNormManualModule(n_neurons, eps=1e-5)`."""

    def __init__(self, n_neurons: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(n_neurons, eps=eps, momentum=momentum)
