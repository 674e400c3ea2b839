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


def _biased_var(centred: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Per-channel mean of squares of an already centred tensor: the biased variance.

    On CPU, torch.var over dims (0, 2, 3) is about 10x slower than this square-and-mean.
    """
    return centred.square().mean(dim=dims)


def _update_running(running_mean, running_var, mean, var, count: int, momentum: float) -> None:
    """nn.BatchNorm's running-stat update, with the unbiased variance."""
    with torch.no_grad():
        running_mean.lerp_(mean.detach(), momentum)
        running_var.lerp_(var.detach() * (count / max(count - 1, 1)), momentum)


class BatchNormFunction(torch.autograd.Function):
    """Batch norm with a hand-written backward (docs/backprop.md §3.2a).

    apply(x, gamma, beta, eps=1e-5, running_mean=None, running_var=None, momentum=0.1,
    training=True). In training mode the batch statistics normalise and, when running buffers
    are given, update them in place; in eval mode the running statistics normalise.

    Lean on purpose (benchmarks/bench_batchnorm.py): x̂ = (x - μ) · inv_std is never built.
    Forward saves the centred x - μ and backward folds inv_std into (C,) vectors; the squares
    are summed in the output's buffer and dout · (x - μ) in dx's, so forward allocates only
    centred and out, and backward only dx.
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, eps=1e-5, running_mean=None, running_var=None,
                momentum=0.1, training=True):  # fmt: skip
        if not training and (running_mean is None or running_var is None):
            raise ValueError("BatchNormFunction in eval mode needs running_mean and running_var")
        dims = _reduce_dims(x)
        mean = x.mean(dim=dims) if training else running_mean  # (C,)
        centred = x - _per_channel(mean, x)
        out = torch.empty_like(centred)  # first the squares' buffer, then the output
        var = torch.mul(centred, centred, out=out).mean(dim=dims) if training else running_var
        if training and running_mean is not None:
            _update_running(running_mean, running_var, mean, var, x.numel() // x.shape[1],
                            momentum)  # fmt: skip
        inv_std = torch.rsqrt(var + eps)  # (C,)
        # γ x̂ + β = centred · (γ inv_std) + β
        torch.mul(centred, _per_channel(gamma * inv_std, x), out=out).add_(_per_channel(beta, x))
        ctx.training = training
        # centred feeds dgamma and the train-mode dx only; gamma and inv_std are (C,)
        keep_centred = ctx.needs_input_grad[1] or (training and ctx.needs_input_grad[0])
        ctx.save_for_backward(centred if keep_centred else None, gamma, inv_std)
        return out

    @staticmethod
    def backward(ctx, dout):
        centred, gamma, inv_std = ctx.saved_tensors
        need_x, need_gamma, need_beta = ctx.needs_input_grad[:3]
        dims = _reduce_dims(dout)
        dx_needs_sums = need_x and ctx.training  # eval-mode dx ignores the batch sums
        dx = torch.empty_like(dout) if need_x or need_gamma else None
        dgamma = dbeta = None
        if need_gamma or dx_needs_sums:  # Σ dout · x̂ = inv_std · Σ dout · (x - μ); dx's buffer
            dgamma = torch.mul(dout, centred, out=dx).sum(dim=dims) * inv_std  # (C,)
        if need_beta or dx_needs_sums:
            dbeta = dout.sum(dim=dims)  # (C,)
        if need_x:
            scale = gamma * inv_std  # (C,)
            if ctx.training:
                m = dout.numel() // dout.shape[1]  # N (or N*H*W) values per channel
                # dx = scale * (dout - (dbeta + x̂ * dgamma) / m), x̂ = centred * inv_std
                k = scale / -m
                torch.mul(dout, _per_channel(scale, dout), out=dx)
                dx.addcmul_(centred, _per_channel(k * inv_std * dgamma, dout))
                dx.add_(_per_channel(k * dbeta, dout))
            else:  # running statistics are constants
                torch.mul(dout, _per_channel(scale, dout), out=dx)
        else:
            dx = None
        return (dx, dgamma if need_gamma else None, dbeta if need_beta else None,
                None, None, None, None, None)  # fmt: skip


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
            raise ValueError(
                f"{type(self).__name__} needs more than one value per channel to train"
            )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class AutogradBatchNorm(_BatchNormBase):
    """Batch norm from differentiable torch ops; autograd derives the backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        dims = _reduce_dims(x)
        mean = x.mean(dim=dims) if self.training else self.running_mean  # (C,)
        centred = x - _per_channel(mean, x)
        var = _biased_var(centred, dims) if self.training else self.running_var  # biased
        if self.training:
            _update_running(self.running_mean, self.running_var, mean, var,
                            x.numel() // x.shape[1], self.momentum)  # fmt: skip
        x_hat = centred * _per_channel(torch.rsqrt(var + self.eps), x)
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


class _ApplyWithStoredEps:
    """torch's `apply` on the class; on an instance, eps defaults to the instance's eps."""

    def __get__(self, function, cls):
        apply = super(CustomBatchNormManualFunction, cls).apply
        if function is None:
            return apply

        def apply_with_stored_eps(x, gamma, beta, eps=None, *rest):
            return apply(x, gamma, beta, function.eps if eps is None else eps, *rest)

        return apply_with_stored_eps


class CustomBatchNormManualFunction(BatchNormFunction):
    """Seed §3.2b; `CustomBatchNormManualFunction(n_neurons, eps).apply(x, gamma, beta)` works too.

    Course code instantiates the Function (torch warns); the instance's eps is then the default.
    """

    apply = _ApplyWithStoredEps()

    def __init__(self, n_neurons: int | None = None, eps: float = 1e-5):
        super().__init__()
        self.n_neurons, self.eps = n_neurons, eps


class CustomBatchNormManualModule(ManualBatchNorm):
    """Seed §3.2c: `CustomBatchNormManualModule(n_neurons, eps=1e-5)`."""

    def __init__(self, n_neurons: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(n_neurons, eps=eps, momentum=momentum)
