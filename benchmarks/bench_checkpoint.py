"""What checkpoints cost: one save of each model's whole state, and a whole run with and without.

Usage: DLEXP_DATA=... python benchmarks/bench_checkpoint.py [--repeats 5] [--runs 3]

- save: `save_run_state` of the seed NumPy MLP (SGD) and of the ConvNet (Adam, 9.2 M parameters),
  median of --repeats, with the file size; the bare reference is np.save / torch.save of the
  same arrays into memory (serialisation alone: no checksum, no fsync).
- run: the default `dlexp-train` (checkpoints at every evaluation, 15 of them, and `best`
  when validation improves) against `checkpoint.every=0` (a single save at the end), in
  interleaved subprocess pairs; the loop's wall time (metrics.json's timing.wall_s).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build(overrides: list[str]):
    from dlexp.build import build_parts, load_run_data, make_backend
    from dlexp.data import BatchSampler
    from tests.conftest import compose_train

    cfg = compose_train([*overrides, "output_dir=unused", "data.eval_subset=100"])
    parts = build_parts(cfg, np.random.default_rng(0))
    data = load_run_data(cfg)
    backend = make_backend(parts, data, cfg)
    sampler = BatchSampler(len(data.train), cfg.batch_size, np.random.default_rng(0))
    backend.train_step(sampler.next_batch())  # Adam's moments exist after one step
    return backend, sampler


def time_saves(name: str, overrides: list[str], repeats: int) -> dict:
    from dlexp.run.checkpoint_file import backend_state, save_run_state

    backend, sampler = build(overrides)
    arrays, _ = backend_state(backend, sampler)
    path = Path(tempfile.mkdtemp()) / "last.ckpt"
    saves, bare = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        save_run_state(path, backend, sampler)
        saves.append(time.perf_counter() - start)
        start = time.perf_counter()
        if backend.kind == "torch":
            import torch

            torch.save(arrays, io.BytesIO())
        else:
            np.savez(io.BytesIO(), **arrays)
        bare.append(time.perf_counter() - start)
    return {
        "state": name,
        "save_s": statistics.median(saves),
        "bare_s": statistics.median(bare),
        "mb": path.stat().st_size / 1e6,
    }


def time_run(every: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        args = [sys.executable, "-m", "dlexp", "progress=false", f"hydra.run.dir={out}"]
        subprocess.run([*args, *every.split()], check=True, capture_output=True)
        return json.loads((Path(out) / "metrics.json").read_text())["timing"]["wall_s"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = [
        time_saves("seed NumPy MLP + SGD", [], args.repeats),
        time_saves("ConvNet + Adam", ["model=convnet", "device=cpu", "batch_size=8"], args.repeats),
    ]
    print("| state | save (median) | bare serialisation | file |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['state']} | {r['save_s']:.3f} s | {r['bare_s']:.3f} s | {r['mb']:.1f} MB |")
    default, off = [], []
    for _ in range(args.runs):  # interleaved, so that load drifts hit both alike
        default.append(time_run(""))
        off.append(time_run("checkpoint.every=0"))
    ratios = [d / o for d, o in zip(default, off, strict=True)]
    print(
        f"\nseed run loop wall, median of {args.runs}: every evaluation "
        f"{statistics.median(default):.2f} s, only at the end {statistics.median(off):.2f} s; "
        f"ratio median {statistics.median(ratios):.3f} (each pair: "
        f"{', '.join(f'{r:.3f}' for r in ratios)})"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
