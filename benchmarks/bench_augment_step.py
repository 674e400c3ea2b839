"""What augmentation adds to a real training step: `experiment=torch_mlp_best`'s torch MLP step
(and the seed NumPy MLP's) with data.augment=none, flip and flip_crop, interleaved in one process.

Usage: DLEXP_DATA=... python benchmarks/bench_augment_step.py [--steps 30] [--rounds 5]
Prints the median step time per mode and its ratio to `none`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

MODES = ("none", "flip", "flip_crop")


def backends(overrides: list[str]):
    """One backend per mode, with the same model, data and batches."""
    from dlexp.build import augment_generator, build_parts, load_run_data, make_backend
    from dlexp.data import BatchSampler
    from tests.conftest import compose_train

    built = {}
    data = None
    for mode in MODES:
        cfg = compose_train([*overrides, f"data.augment={mode}", "output_dir=unused"])
        parts = build_parts(cfg, np.random.default_rng(0))
        data = data or load_run_data(cfg)
        sampler = BatchSampler(len(data.train), cfg.batch_size, np.random.default_rng(0))
        built[mode] = (make_backend(parts, data, cfg, augment_generator(0)), sampler)
    return built


def time_steps(backend, sampler, steps: int) -> float:
    backend.train_step(sampler.next_batch())  # warm
    start = time.perf_counter()
    for _ in range(steps):
        backend.train_step(sampler.next_batch())
    backend.pop_train_stats()  # the torch backend syncs here
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cases = {
        "torch_mlp_best (torch, batch 256)": ["experiment=torch_mlp_best", "device=cpu"],
        "seed NumPy MLP (batch 200)": [],
    }
    print("| model | mode | median ms/step | ratio to none |\n|---|---|---|---|")
    for name, overrides in cases.items():
        built = backends(overrides)
        times: dict[str, list[float]] = {m: [] for m in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                times[mode].append(time_steps(*built[mode], args.steps))
        base = statistics.median(times["none"])
        for mode in MODES:
            t = statistics.median(times[mode])
            print(f"| {name} | {mode} | {1000 * t:.2f} | {t / base:.3f}× |")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
