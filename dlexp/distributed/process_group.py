"""Where this process stands among the ranks of a data-parallel run, and its process group.

A rank learns its place from the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT): under `torchrun -m dlexp`, and under dlexp's own
launcher (dlexp.distributed.launch), which runs torchrun's elastic agent. A SLURM job of several
tasks (hydra/launcher=dlexp_slurm_ddp) gets the same variables from SLURM's, as submitit's
TorchDistributedEnvironment exports them.

torch is imported only by a process that joins a group: one process never loads it here.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import signal
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from dlexp.distributed.collectives import from_every_rank
from dlexp.errors import ConfigError
from dlexp.run.cores import cpus_for_this_job

BACKENDS = ("auto", "gloo", "nccl")  # the distributed.backend option
TIMEOUT_S = 60  # a collective that waits longer fails: a hung rank ends the run, never a hang
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
SLURM_PORTS = (20000, 60000)  # the master port is drawn from the job id, as submitit does


@dataclass(frozen=True)
class Ranks:
    """This process's place: its rank among `world_size`, and on its machine."""

    rank: int
    world_size: int
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = "gloo"  # the process group's collectives: gloo, or nccl (gloo for CPU tensors)

    @property
    def writes(self) -> bool:
        """Rank 0 writes the run's files: metrics.json, checkpoints, loggers, the progress bar."""
        return self.rank == 0


_joined: Ranks | None = None  # this process's ranks, once it has joined a group of several


def joined_ranks() -> Ranks | None:
    """The ranks of the process group this process has joined; None in a single process."""
    return _joined


def distributed_arguments(nproc_per_node: int = 1, backend: str = "auto") -> dict:
    """The `distributed` keys, range-checked: the group's schema (dlexp.config.schema).

    nproc_per_node: the ranks `dlexp-train` starts on this machine; 1 is one process, as
    always (under torchrun, torchrun's --nproc_per_node counts instead). backend: the library
    that reduces the ranks' tensors: auto (NCCL on CUDA, gloo on the CPU), gloo or nccl.
    """
    if nproc_per_node < 1:
        raise ConfigError(f"distributed.nproc_per_node must be >= 1, got {nproc_per_node}")
    if backend not in BACKENDS:
        raise ConfigError(
            f"distributed.backend must be one of {', '.join(BACKENDS)}, got {backend!r}"
        )
    return {"nproc_per_node": nproc_per_node, "backend": backend}


def resolve_backend(name: str, device_type: str) -> str:
    """`auto` is NCCL on CUDA and gloo elsewhere; NCCL reduces GPU tensors only."""
    distributed_arguments(backend=name)
    if name == "auto":
        return "nccl" if device_type == "cuda" else "gloo"
    if name == "nccl" and device_type != "cuda":
        raise ConfigError(
            f"distributed.backend=nccl reduces GPU tensors; this run is on {device_type}: "
            f"use distributed.backend=auto or gloo"
        )
    return name


def environment_ranks() -> Ranks | None:
    """The ranks torchrun (or dlexp's launcher) describes, when they are several; else None."""
    world = os.environ.get("WORLD_SIZE", "")
    if "RANK" not in os.environ or not world.isdigit() or int(world) < 2:
        return None
    local_world = os.environ.get("LOCAL_WORLD_SIZE", world)
    return Ranks(
        int(os.environ["RANK"]), int(world), int(os.environ.get("LOCAL_RANK", "0")),
        int(local_world),
    )  # fmt: skip


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: `gpu[03-04,07],cpu1` -> `gpu03`."""
    match = re.match(r"([^,\[]+)(?:\[([^,\]-]+))?", nodelist.strip())
    if not match:
        raise ConfigError(f"cannot read the SLURM node list {nodelist!r}")
    return match[1] + (match[2] or "")


def slurm_environment(env: dict[str, str]) -> dict[str, str] | None:
    """torchrun's variables for a task of a SLURM job step with several tasks (one per GPU), from
    SLURM's own; None outside such a step (a shell in an allocation has no SLURM_PROCID). The
    master is the first node, its port drawn from the job id."""
    tasks = env.get("SLURM_STEP_NUM_TASKS", env.get("SLURM_NTASKS", "1"))
    if "RANK" in env or "SLURM_PROCID" not in env or not tasks.isdigit() or int(tasks) < 2:
        return None
    nodes = max(1, int(env.get("SLURM_STEP_NUM_NODES", env.get("SLURM_JOB_NUM_NODES", "1"))))
    job = int(env.get("SLURM_ARRAY_JOB_ID", env.get("SLURM_JOB_ID", "0")))
    low, high = SLURM_PORTS
    return {
        "MASTER_ADDR": first_host(env.get("SLURM_JOB_NODELIST", "localhost")),
        "MASTER_PORT": env.get("MASTER_PORT", str(low + job % (high - low))),
        "RANK": env["SLURM_PROCID"],
        "WORLD_SIZE": tasks,
        "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
        "LOCAL_WORLD_SIZE": str(int(tasks) // nodes),
    }


def join_process_group(ranks: Ranks, backend: str) -> Ranks:
    """Join the process group (env://) as `ranks`; NCCL runs beside gloo, which reduces the CPU
    tensors (the stop flag, the config). A CUDA rank takes its local rank's GPU."""
    global _joined
    import torch  # a data-parallel run's process only
    import torch.distributed as dist  # (as torch)

    if backend == "nccl":
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group(
        "cpu:gloo,cuda:nccl" if backend == "nccl" else "gloo",
        rank=ranks.rank, world_size=ranks.world_size, timeout=timedelta(seconds=TIMEOUT_S),
    )  # fmt: skip
    _joined = Ranks(ranks.rank, ranks.world_size, ranks.local_rank, ranks.local_world_size, backend)
    return _joined


def join_slurm_tasks(device: str) -> Ranks | None:
    """A task of a SLURM job with several tasks joins the others (NCCL on CUDA); None for a job
    of one task."""
    env = slurm_environment(dict(os.environ))
    if env is None:
        return None
    os.environ.update(env)
    import torch  # a SLURM job of several tasks trains a torch model

    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    return join_process_group(environment_ranks(), "nccl" if cuda else "gloo")


def failed_because_of_another_rank(err: BaseException) -> bool:
    """Whether a collective failed because another rank died or stopped answering: gloo's
    closed connection, or torch.distributed's own errors (a timeout, NCCL's)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and isinstance(err, getattr(dist, "DistError", ())):
        return True
    return any(why in str(err) for why in ("Connection closed by peer", "Connection reset"))


def leave_process_group() -> None:
    global _joined
    dist = sys.modules.get("torch.distributed")
    if _joined is not None and dist is not None and dist.is_initialized():
        dist.destroy_process_group()
    _joined = None


def rank_processes() -> list[dict]:
    """Every rank's host and pid, in rank order (a collective): environment.json keeps them."""
    return from_every_rank({"host": socket.gethostname(), "pid": os.getpid()})


def die_with_parent() -> None:
    """SIGTERM when the launcher (torchrun, dlexp-train) dies, even by SIGKILL (Linux): the rank
    then stops after its step, with the others. A launcher already gone ends the rank now."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def exit_now(status: int) -> None:
    """End this rank's process at once (its launcher is gone: torch's wrapper around the rank
    would wait forever for it to read the rank's result)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def threads_per_rank(local_world_size: int) -> int:
    """Each of a machine's ranks gets its share of this job's cores (at least one)."""
    return max(1, (cpus_for_this_job() or os.cpu_count() or 1) // local_world_size)


def log_to_run_folder(out: Path, ranks: Ranks, hydra_logs: bool) -> None:
    """A rank's log lines. Rank 0's are a single run's: where Hydra set them up (`hydra_logs`),
    as they are, else on the console and in train.log. The other ranks' warnings go to
    train.log only, prefixed `[rank k]` (a SLURM task's own Hydra handlers are dropped)."""
    if ranks.writes and hydra_logs:
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    file = logging.FileHandler(out / "train.log")
    handlers: list[logging.Handler] = [file]
    if ranks.writes:
        root.setLevel(logging.INFO)
        handlers.append(logging.StreamHandler(sys.stdout))
        line = "[%(asctime)s][%(name)s] %(message)s"
    else:
        root.setLevel(logging.WARNING)
        line = f"[%(asctime)s][rank {ranks.rank}][%(name)s] %(message)s"
    for handler in handlers:
        handler.setFormatter(logging.Formatter(line, "%H:%M:%S"))
        root.addHandler(handler)
