"""The torch backend's device: which one, at which precision, seeded how; its compile cache.

A rank of a data-parallel run (dlexp.distributed) takes its local rank's GPU, and a dropout
stream of its own: rank 0 keeps the single process's, so one process is unchanged.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from dlexp.data.cifar10 import default_cache_dir
from dlexp.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "auto")  # auto: bf16 on CUDA, fp32 elsewhere (resolve_precision)


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an absent device is a clear error."""
    cuda_ok = torch.cuda.is_available()
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if cuda_ok else "mps" if mps_ok else "cpu")
    if name == "cuda" and not cuda_ok:
        raise ConfigError(
            f"device=cuda requested but CUDA is not available (torch {torch.__version__});"
            f" use device=cpu or device=auto"
        )
    if name == "mps" and not mps_ok:
        raise ConfigError("device=mps requested but MPS is not available; use device=cpu or auto")
    return torch.device(name)


def seed_torch(seed: int, deterministic: bool) -> None:
    """Seed torch's generators; optionally insist on deterministic kernels."""
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = not deterministic


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` is bf16 on CUDA and fp32 elsewhere: CPUs without bf16 units run it ~20x slower."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def use_persistent_inductor_cache() -> str:
    """Keep inductor's FX-graph and kernel caches across runs, in dlexp's per-user cache folder
    ($DLEXP_CACHE, $XDG_CACHE_HOME/dlexp or ~/.cache/dlexp) unless TORCHINDUCTOR_CACHE_DIR is set.
    """
    return os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(default_cache_dir() / "inductor"))


# Now, at import: torch._dynamo reads (and, when unset, fixes) the folder when first imported,
# which building any torch.optim optimizer does, well before a step is compiled.
use_persistent_inductor_cache()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (only to time the first compiled steps)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def rank_seed(seed: int, rank: int) -> int:
    """torch's seed on `rank`: `seed` on rank 0 (the single process's stream), another stream,
    derived from both, on each other rank, so that their dropout masks differ."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] >> 1)


def rank_device(resolved: torch.device, ranks) -> torch.device:
    """A rank's CUDA device is its local rank's GPU; there must be one per rank on the machine."""
    if ranks is None or resolved.type != "cuda":
        return resolved
    gpus = torch.cuda.device_count()
    if gpus < ranks.local_world_size:
        raise ConfigError(
            f"{ranks.local_world_size} ranks on this machine need {ranks.local_world_size} "
            f"GPUs (one each), it has {gpus}: use fewer ranks, or device=cpu"
        )
    return torch.device("cuda", ranks.local_rank)


def prepare_device(
    device: str, precision: str, seed: int, deterministic: bool, ranks=None
) -> torch.device:
    """Resolve the device and check the precision, then seed torch for a reproducible init.

    `ranks` (dlexp.distributed.process_group.Ranks) places a rank of a data-parallel run: its
    GPU, its seed. Every rank's model starts as rank 0's (DistributedDataParallel copies it)."""
    resolved = rank_device(resolve_device(device), ranks)
    resolve_precision(precision, resolved)
    seed_torch(rank_seed(seed, 0 if ranks is None else ranks.rank), deterministic)
    return resolved
