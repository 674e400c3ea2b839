"""The torch backend on several ranks (data-parallel training, docs/distributed.md): the model
in DistributedDataParallel, each rank's slice of the global batch, the sums the ranks add up, and
every rank's RNG in the checkpoint. One process never comes here.
"""

from __future__ import annotations

import inspect

import torch
from torch.nn.parallel import DistributedDataParallel

from dlexp.data.augment import AugmentParams
from dlexp.distributed.collectives import from_every_rank, summed


def data_parallel(model: torch.nn.Module, device: torch.device) -> DistributedDataParallel:
    """The model as each rank trains it: gradients averaged over the ranks in backward. Buffers
    start as rank 0's, then each rank keeps its own: evaluation and checkpoints take rank 0's."""
    device_ids = [device.index] if device.type == "cuda" else None
    parameters = inspect.signature(DistributedDataParallel).parameters
    # torch 2.13 renamed broadcast_buffers (and warns for the old name)
    keep_own = (
        "forward_sync_buffers" if "forward_sync_buffers" in parameters else "broadcast_buffers"
    )
    return DistributedDataParallel(model, device_ids=device_ids, **{keep_own: False})


def rank_slice(indices: torch.Tensor, augment: AugmentParams | None, ranks):
    """This rank's contiguous slice of a global batch's indices, and of the flips and crops drawn
    for the whole batch (so that each image gets the draws it gets in one process)."""
    per = len(indices) // ranks.world_size  # the config check makes it divide
    part = slice(ranks.rank * per, (ranks.rank + 1) * per)
    if augment is not None:
        augment = AugmentParams(augment.flip[part], augment.dy[part], augment.dx[part], augment.pad)
    return indices[part], augment


def global_sums(*values: torch.Tensor) -> list[torch.Tensor]:
    """Each 0-d tensor summed over the ranks (in float64), in one all-reduce."""
    stacked = torch.stack([v.detach().to(torch.float64) for v in values])
    return list(summed(stacked))


def global_train_stats(loss_sum: torch.Tensor, correct: torch.Tensor, seen: int):
    """(loss_sum, correct, seen) of the global batches since the last log, typed as one
    process keeps them."""
    seen_tensor = torch.tensor(float(seen), device=loss_sum.device)
    loss, right, count = global_sums(loss_sum, correct, seen_tensor)
    return loss.to(loss_sum.dtype), right.to(correct.dtype), int(count.item())


def every_rank_rng(own: dict) -> list[dict]:
    """Every rank's torch RNG state, in rank order (dropout draws differ per rank)."""
    return from_every_rank(own)


def rng_for_rank(state: dict, ranks) -> dict | None:
    """The RNG state this rank continues from: rank 0's is the checkpoint's own; another rank's
    is its own from a checkpoint of the same world size, else None (it keeps its seeded stream:
    a resume on another world size is exact up to dropout)."""
    if ranks is None or ranks.rank == 0:
        return state["rng"]
    saved = state.get("rank_rng")
    return saved[ranks.rank] if saved is not None and len(saved) == ranks.world_size else None
