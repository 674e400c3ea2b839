"""Time dlexp's torch train step, eager vs compiled vs bf16, for the ConvNet and the MLPs.

Each row is `Backend.train_step` (index the resident data, forward, cross-entropy, backward,
optimizer step) on random CIFAR-shaped data, so it is the step a run takes. Compiled rows use
compile=True: their compile time is `Backend.compile_s`, the seconds the first steps took beyond
normal ones, reported apart (a second run reuses the inductor cache, ~/.cache/dlexp/inductor).
Every variant of a model is built first, then all are timed in rotating order, so a busy machine
slows them alike; the table gives medians.

Usage: python benchmarks/bench_torch_step.py [--repeats 7] [--threads N] [--only convnet]
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass

import numpy as np
import torch
from bench_timing import time_ms

from dlexp.backends import BackendOptions
from dlexp.backends.torch_backend import TIMED_STEPS, Backend
from dlexp.data.prepare import CIFAR10Data, Split
from dlexp.data.sampler import BatchSampler
from dlexp.models.convnet import ConvNet
from dlexp.models.torch_mlp import MLP


@dataclass(frozen=True)
class Workload:
    """A model at one batch size, with the optimizer its preset uses."""

    name: str
    batch: int
    make_model: object  # () -> nn.Module
    make_optimizer: object  # (parameters) -> torch.optim.Optimizer


WORKLOADS = (
    Workload("convnet (seed: batch 32, Adam)", 32, lambda: ConvNet(norm="torch_bn"),
             lambda p: torch.optim.Adam(p, lr=1e-4)),
    Workload("torch_mlp (seed: 100 hidden, batch 200, SGD)", 200,
             lambda: MLP(3072, [100], 10, 0.02, init="course"),
             lambda p: torch.optim.SGD(p, lr=2e-3)),
    Workload("torch_mlp_best (1024x1024, BN, batch 256, AdamW)", 256,
             lambda: MLP(3072, [1024, 1024], 10, 0.02, norm="torch_bn", dropout=0.022),
             lambda p: torch.optim.AdamW(p, lr=4.7e-4, weight_decay=1.3e-4)),
)  # fmt: skip
# variant -> Backend keyword arguments; channels_last only changes the ConvNet
VARIANTS = {
    "eager fp32": {},
    "compiled fp32": {"compile": True},
    "eager bf16": {"precision": "bf16"},
    "eager channels_last": {"channels_last": True},
    "compiled channels_last": {"compile": True, "channels_last": True},
}
CONV_ONLY = ("eager channels_last", "compiled channels_last")


def random_data(n_train: int, seed: int = 0) -> CIFAR10Data:
    """Standard-normal CIFAR-shaped images with random labels; no evaluation splits."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        images = rng.standard_normal((n, 3, 32, 32), dtype=np.float32)
        return Split(images, rng.integers(0, 10, n).astype(np.int64))

    return CIFAR10Data(split(n_train), split(0), split(0), preprocess="standardize")


def build(work: Workload, options: dict, data: CIFAR10Data) -> tuple[Backend, BatchSampler]:
    torch.manual_seed(0)
    model = work.make_model()
    settings = BackendOptions(work.batch, work.batch, device=torch.device("cpu"), **options)
    backend = Backend(model, work.make_optimizer(model.parameters()), None, data, settings)
    return backend, BatchSampler(len(data.train), work.batch, np.random.default_rng(0))


def measure(work: Workload, repeats: int, variants: list[str]) -> list[dict]:
    """One row per variant: median and min ms per step, and compile seconds."""
    data = random_data(4 * work.batch)
    steps = {}
    for name in variants:
        backend, sampler = build(work, VARIANTS[name], data)
        for _ in range(TIMED_STEPS + 1):  # compiles, and finishes compile_s's timing
            backend.train_step(sampler.next_batch())
        steps[name] = (backend, lambda b=backend, s=sampler: b.train_step(s.next_batch()))
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(repeats):
        for name in variants[i % len(variants) :] + variants[: i % len(variants)]:
            samples[name].append(time_ms(steps[name][1]))
    base = statistics.median(samples["eager fp32"])
    return [
        {"model": work.name, "variant": name, "median_ms": statistics.median(ms),
         "min_ms": min(ms), "vs_eager": statistics.median(ms) / base,
         "compile_s": steps[name][0].compile_s}
        for name, ms in samples.items()
    ]  # fmt: skip


def rows(repeats: int = 7, only: str | None = None) -> list[dict]:
    """Every workload's rows (the `python -m benchmarks` harness may call this)."""
    out = []
    for work in WORKLOADS:
        if only and not work.name.startswith(only):
            continue
        conv = work.name.startswith("convnet")
        variants = [v for v in VARIANTS if conv or v not in CONV_ONLY]
        out += measure(work, repeats, variants)
    return out


def print_table(table: list[dict]) -> None:
    print("| model | variant | median ms/step | min ms | vs eager fp32 | compile s |")
    print("|---|---|---|---|---|---|")
    for r in table:
        compile_s = f"{r['compile_s']:.1f}" if r["compile_s"] else "-"
        print(f"| {r['model']} | {r['variant']} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | "
              f"{r['vs_eager']:.2f}x | {compile_s} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="rotating steps of each variant")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--only", default=None, help="workloads whose name starts with this")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    table = rows(args.repeats, args.only)
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads, median of "
          f"{args.repeats} interleaved steps per variant\n")  # fmt: skip
    print_table(table)


if __name__ == "__main__":
    main()
