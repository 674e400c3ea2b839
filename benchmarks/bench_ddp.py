"""Time the ConvNet training step on 2 data-parallel ranks x 1 thread against 1 process x 2
threads, at the same global batch (issue 26's overhead goal: >= 0.8x the single process's
throughput).

The step is forward + cross-entropy + backward + Adam at the seed's defaults (global batch 32,
nn.BatchNorm2d, float32, CPU). On two ranks each trains on 16 images in dlexp's
DistributedDataParallel (dlexp.backends.torch_ranks.data_parallel, gloo), and reduces the stop
flag as dlexp's loop does every step; a rank's step is timed from a barrier to a barrier. The
ranks live through the whole measurement and take turns with this process, which times its own
step while they wait: repeats interleave, each side runs alone on the machine. The single
process on 1 thread is timed too: on a shared machine, 2 OpenMP threads slow down far more than
2 processes of 1 thread do, and that row tells the two effects apart.

Usage: python benchmarks/bench_ddp.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from dlexp.backends.torch_ranks import data_parallel
from dlexp.distributed.collectives import max_over_ranks
from dlexp.models.convnet import ConvNet

BATCH, N_CLASSES, LR = 32, 10, 1e-4  # the seed's ConvNet defaults: global batch, Adam
WORLD = 2
WARMUP = 2  # steps before timing: allocator, oneDNN primitive caches
GOAL = 0.8  # throughput on 2 ranks over 1 process
ROWS = {  # label: name
    "1 process x 2 threads": "one process",
    "2 ranks x 1 thread (DDP, gloo)": "two ranks",
    "1 process x 1 thread": "one thread",
}


def step_function(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, ranked: bool):
    """One training step on a fixed batch; on ranks, with the loop's stop-flag all-reduce."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), labels).backward()
        optimizer.step()
        if ranked:
            max_over_ranks(0)

    return step


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, 3, 32, 32, generator=generator)
    return x, torch.randint(0, N_CLASSES, (BATCH,), generator=generator)


def rank_main(rank: int, store: str, turns, times) -> None:
    """A rank: one thread, its half of the global batch; times a step whenever told to."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    torch.manual_seed(0)
    x, labels = batch()
    half = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
    model = data_parallel(ConvNet(3, N_CLASSES, norm="torch_bn"), torch.device("cpu"))
    step = step_function(model, x[half], labels[half], ranked=True)
    while turns[rank].get():  # False: the measurement is over
        dist.barrier()
        start = time.perf_counter()
        step()
        dist.barrier()
        if rank == 0:
            times.put(1000 * (time.perf_counter() - start))
    dist.destroy_process_group()


def measure(repeats: int) -> dict[str, list[float]]:
    """ms per global step: {"one process": [...], "two ranks": [...]}, interleaved."""
    context = mp.get_context("spawn")
    turns, times = [context.Queue() for _ in range(WORLD)], context.Queue()
    with tempfile.TemporaryDirectory() as folder:
        ranks = mp.start_processes(rank_main, (os.path.join(folder, "store"), turns, times),
                                   nprocs=WORLD, join=False, start_method="spawn")  # fmt: skip
        torch.manual_seed(0)
        x, labels = batch()
        single = step_function(ConvNet(3, N_CLASSES, norm="torch_bn"), x, labels, ranked=False)

        def alone(threads: int) -> float:
            torch.set_num_threads(threads)
            start = time.perf_counter()
            single()
            return 1000 * (time.perf_counter() - start)

        def ranked() -> float:
            for turn in turns:
                turn.put(True)
            return times.get()

        samples: dict[str, list[float]] = {name: [] for name in ROWS.values()}
        for i in range(WARMUP + repeats):
            step_ms = {"one process": alone(WORLD), "two ranks": ranked(), "one thread": alone(1)}
            for name, ms in step_ms.items():
                if i >= WARMUP:
                    samples[name].append(ms)
        for turn in turns:
            turn.put(False)
        ranks.join()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed steps of each (median)")
    args = parser.parse_args()
    if args.repeats < 1:
        print(f"bench_ddp.py: error: --repeats must be >= 1, got {args.repeats}", file=sys.stderr)
        sys.exit(2)
    samples = measure(args.repeats)
    one, two = (statistics.median(samples[k]) for k in ("one process", "two ranks"))
    print(f"ConvNet train step, global batch {BATCH}, float32, CPU ({os.cpu_count()} cores), "
          f"median of {args.repeats}, interleaved\n")  # fmt: skip
    print("| what | median ms | min ms |")
    print("|---|---|---|")
    for label, name in ROWS.items():
        ms = samples[name]
        print(f"| {label} | {statistics.median(ms):.1f} | {min(ms):.1f} |")
    verdict = "meets" if one / two >= GOAL else "misses"
    print(f"\nthroughput of 2 ranks over 1 process: {one / two:.2f}x ({verdict} the {GOAL}x goal)")


if __name__ == "__main__":
    main()
