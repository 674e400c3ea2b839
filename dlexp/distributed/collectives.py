"""The collectives of a data-parallel run, each named for what the ranks agree on.

Every rank calls each function at the same point of the run, in the same order. Small CPU values
(the stop flag, the config, RNG states) go through gloo, also beside NCCL; the tensors stay on
their device. torch is imported inside: only a rank's process calls these, with torch loaded.
"""

from __future__ import annotations


def shard(rank: int, world_size: int, total: int) -> tuple[int, int]:
    """The contiguous [start, stop) of `total` items that `rank` evaluates: ceil(total / world)
    each, the last shard shorter (or empty)."""
    per = -(-total // world_size)
    start = min(total, rank * per)
    return start, min(total, start + per)


def max_over_ranks(value: int) -> int:
    """The largest of every rank's `value` (the stop flag: a signal number, or 0)."""
    import torch  # loaded by every rank
    import torch.distributed as dist  # (as torch)

    flag = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item())


def wait_for_every_rank() -> None:
    """Return once every rank has come here (after rank 0 has written a stopped run)."""
    import torch.distributed as dist  # loaded by every rank

    dist.barrier()


def from_rank_zero(obj):
    """Rank 0's `obj` on every rank (pickled through gloo); the others pass a placeholder."""
    import torch  # loaded by every rank
    import torch.distributed as dist  # (as torch)

    box = [obj]
    dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]


def from_every_rank(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    import torch.distributed as dist  # loaded by every rank

    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def summed(tensor):
    """`tensor` summed over the ranks, in place (and returned)."""
    import torch.distributed as dist  # loaded by every rank

    dist.all_reduce(tensor)
    return tensor


def rows_of_every_rank(rows, total: int):
    """The ranks' shards of one split (shard()) put back together: (total, ...) on every rank.
    all_gather needs equal sizes, so each shard is padded to the longest."""
    import torch  # loaded by every rank
    import torch.distributed as dist  # (as torch)

    world = dist.get_world_size()
    longest = -(-total // world)
    padded = rows.new_zeros((longest, *rows.shape[1:]))
    padded[: len(rows)] = rows
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    sizes = [b - a for a, b in (shard(rank, world, total) for rank in range(world))]
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


def rank_zero_buffers(module) -> None:
    """Rank 0's buffers (batch norm's running statistics) on every rank: an unsynchronised norm
    keeps its own on each, and evaluation (like the checkpoint) uses rank 0's."""
    import torch.distributed as dist  # loaded by every rank

    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)
