"""Synchronised batch norm (norm.sync=true) on two gloo ranks against one process's
nn.BatchNorm on the concatenated batch: outputs, gradients and running statistics, in float64.

The ranks are two processes (torch.multiprocessing, spawn) that share a file store; each checks
its own slice and raises on a mismatch, which fails the test with the rank's traceback.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from dlexp.nn import AutogradBatchNorm, ManualBatchNorm

WORLD = 2
SHAPES = [(6, 3), (4, 3, 2, 5)]  # per rank: (N, C) and (N, C, H, W)
TOL = {"rtol": 1e-9, "atol": 1e-12}  # float64: only the summation order differs


def _reference(shape, x, weight, gamma, beta, steps: int):
    """nn.BatchNorm on the whole batch: the outputs and gradients of the last step, running
    statistics after `steps` steps. The loss is Σ out · weight, so that each rank's gradient of
    its own slice is the same number (no 1/N to rescale)."""
    layer = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[1]).double()
    with torch.no_grad():
        layer.weight.copy_(gamma)
        layer.bias.copy_(beta)
    for _ in range(steps):
        layer.zero_grad()
        x_in = x.clone().requires_grad_()
        out = layer(x_in)
        (out * weight).sum().backward()
    return out.detach(), x_in.grad, layer.weight.grad, layer.bias.grad, layer


def _rank_checks(rank: int, store: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        for shape in SHAPES:
            full = (WORLD * shape[0], *shape[1:])
            gen = torch.Generator().manual_seed(len(shape))
            x = 2 * torch.randn(full, generator=gen, dtype=torch.float64) + 3
            weight = torch.randn(full, generator=gen, dtype=torch.float64)
            gamma = torch.rand(shape[1], generator=gen, dtype=torch.float64) + 0.5
            beta = torch.randn(shape[1], generator=gen, dtype=torch.float64)
            mine = slice(rank * shape[0], (rank + 1) * shape[0])
            out, dx, dgamma, dbeta, ref = _reference(shape, x, weight, gamma, beta, steps=2)
            for cls in (ManualBatchNorm, AutogradBatchNorm):
                layer = cls(shape[1], sync=True).double()
                with torch.no_grad():
                    layer.weight.copy_(gamma)
                    layer.bias.copy_(beta)
                for _ in range(2):
                    layer.zero_grad()
                    x_in = x[mine].clone().requires_grad_()
                    got = layer(x_in)
                    (got * weight[mine]).sum().backward()
                grads = torch.cat([layer.weight.grad, layer.bias.grad])
                dist.all_reduce(grads)  # what DistributedDataParallel reduces
                name = f"{cls.__name__} {shape} rank {rank}"
                torch.testing.assert_close(got, out[mine], **TOL, msg=f"{name}: output")
                torch.testing.assert_close(x_in.grad, dx[mine], **TOL, msg=f"{name}: dx")
                torch.testing.assert_close(grads, torch.cat([dgamma, dbeta]), **TOL,
                                           msg=f"{name}: dgamma, dbeta")  # fmt: skip
                for buffer in ("running_mean", "running_var"):
                    torch.testing.assert_close(getattr(layer, buffer), getattr(ref, buffer),
                                               **TOL, msg=f"{name}: {buffer}")  # fmt: skip
                unsynced = cls(shape[1]).double()  # each rank normalises its own slice
                alone = _reference(shape, x[mine], weight[mine], gamma, beta, steps=1)[0]
                with torch.no_grad():
                    unsynced.weight.copy_(gamma)
                    unsynced.bias.copy_(beta)
                    torch.testing.assert_close(unsynced(x[mine]), alone, **TOL, msg=name)
    finally:
        dist.destroy_process_group()


def test_synchronised_batch_norm_equals_one_process_on_the_whole_batch(tmp_path):
    mp.spawn(_rank_checks, args=(str(tmp_path / "store"),), nprocs=WORLD)


@pytest.mark.parametrize("cls", [ManualBatchNorm, AutogradBatchNorm])
def test_sync_changes_nothing_in_one_process(cls):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, 3, 3, generator=gen)
    plain, synced = cls(4), cls(4, sync=True)
    assert torch.equal(plain(x), synced(x))
    assert torch.equal(plain.running_var, synced.running_var)
