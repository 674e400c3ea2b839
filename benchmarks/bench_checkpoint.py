"""What checkpoints cost: writing and loading each model's whole state in today's format
(`last.safetensors`) against the format before (`last.ckpt`), and a whole run with and without.

Usage: DLEXP_DATA=... python benchmarks/bench_checkpoint.py [--repeats 7] [--runs 3]

- write / load: the seed NumPy MLP (SGD), the torch MLP (SGD) and the ConvNet (Adam, 9.2 M
  parameters), one step trained. Write is `save_run_state` (safetensors) against the earlier
  writer (`save_old_format`, its code as it was: header line, JSON, `np.savez` / `torch.save`,
  sha256, the same atomic write); load is `load_run_state` of each file into the model (read,
  checksum, restore). The two formats alternate within each repeat, in turns; medians of
  --repeats, with the file sizes.
- run: the default `dlexp-train` (checkpoints at every evaluation, 15 of them, and `best`
  when validation improves) against `checkpoint.every=0` (a single save at the end), in
  interleaved subprocess pairs; the loop's wall time (metrics.json's timing.wall_s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STATES = {  # name: overrides
    "seed NumPy MLP + SGD": [],
    "torch MLP + SGD (the seed's)": ["model=torch_mlp", "device=cpu"],
    "ConvNet + Adam": ["model=convnet", "device=cpu", "batch_size=8"],
}


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


def save_old_format(path: Path, backend, sampler) -> None:
    """save_run_state as dlexp wrote it before safetensors (format version 1)."""
    from dlexp.run.checkpoint_file import backend_state
    from tests.runs import write_old_checkpoint

    arrays, meta = backend_state(backend, sampler)
    write_old_checkpoint(path, arrays, {**meta, "loop": {}})


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_formats(name: str, overrides: list[str], repeats: int) -> dict:
    """Median write and load seconds of each format, alternating which goes first."""
    from dlexp.run.checkpoint_file import load_run_state, save_run_state

    backend, sampler = build(overrides)
    folder = Path(tempfile.mkdtemp())
    files = {"old": folder / "last.ckpt", "new": folder / "last.safetensors"}
    writers = {
        "old": lambda: save_old_format(files["old"], backend, sampler),
        "new": lambda: save_run_state(files["new"], backend, sampler),
    }
    times = {f"{op}_{fmt}": [] for op in ("write", "load") for fmt in files}
    for i in range(repeats):
        order = ("old", "new") if i % 2 == 0 else ("new", "old")
        for fmt in order:
            times[f"write_{fmt}"].append(timed(writers[fmt]))
        for fmt in order:
            times[f"load_{fmt}"].append(
                timed(lambda f=files[fmt]: load_run_state(f, backend, sampler))
            )
    row = {key: statistics.median(values) for key, values in times.items()}
    return {"state": name, **row, **{f"mb_{k}": p.stat().st_size / 1e6 for k, p in files.items()}}


def time_run(every: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        args = [sys.executable, "-m", "dlexp", "progress=false", f"hydra.run.dir={out}"]
        subprocess.run([*args, *every.split()], check=True, capture_output=True)
        return json.loads((Path(out) / "metrics.json").read_text())["timing"]["wall_s"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="0 skips the whole-run pairs")
    args = parser.parse_args()
    rows = [time_formats(name, overrides, args.repeats) for name, overrides in STATES.items()]
    print(
        f"| state (median of {args.repeats}) | write .ckpt | write .safetensors | load .ckpt "
        "| load .safetensors | file .ckpt | file .safetensors |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['state']} | {r['write_old']:.3f} s | {r['write_new']:.3f} s | "
            f"{r['load_old']:.3f} s | {r['load_new']:.3f} s | {r['mb_old']:.1f} MB | "
            f"{r['mb_new']:.1f} MB |"
        )
    if args.runs < 1:
        return
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
