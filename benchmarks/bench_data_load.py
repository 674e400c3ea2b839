"""Time `load_cifar10` on the real CIFAR-10, cold and warm array cache, each in a fresh process.

Usage: python benchmarks/bench_data_load.py [--root DIR] [--runs 5]
The page cache stays warm between runs; only the Python process (and, for "cold", the array
cache) is new. Prints a markdown table of median/min/max seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Runs in the child: times the import apart from the load itself, which is what the budget covers.
CHILD = """
import json, sys, time
t0 = time.perf_counter()
from dlexp.data import load_cifar10
t1 = time.perf_counter()
data = load_cifar10(sys.argv[1], validation_size=5000, preprocess=sys.argv[2])
t2 = time.perf_counter()
assert len(data.train) == 45000 and data.train.images.shape[1:] == (3, 32, 32)
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1}))
"""
HEADER = (
    "| preprocess | array cache | load_cifar10 median (s) | min (s) | max (s) "
    "| import dlexp.data (s) | runs |\n|---|---|---|---|---|---|---|"
)


def default_root() -> Path:
    """`$DLEXP_DATA`, else the folder that ../shared/data/cifar10/fetch.sh fills."""
    return Path(os.environ.get("DLEXP_DATA") or Path.home() / ".cache/cifar10-shared")


def run_child(root: Path, cache_dir: Path, preprocess: str) -> dict:
    """One fresh interpreter loading CIFAR-10 with `DLEXP_CACHE=cache_dir`."""
    env = {**os.environ, "DLEXP_CACHE": str(cache_dir)}
    cmd = [sys.executable, "-c", CHILD, str(root), preprocess]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def time_path(root: Path, preprocess: str, runs: int, warm: bool) -> list[dict]:
    """`runs` timings; cold ones each get an empty cache folder, warm ones share a filled one."""
    results = []
    with tempfile.TemporaryDirectory(prefix="dlexp-bench-") as tmp:
        shared = Path(tmp) / "warm"
        if warm:
            run_child(root, shared, preprocess)  # fill the cache, untimed
        for i in range(runs):
            cache = shared if warm else Path(tmp) / f"cold-{i}"
            results.append(run_child(root, cache, preprocess))
    return results


def row(preprocess: str, cache: str, results: list[dict]) -> str:
    """One markdown table row of load times in seconds."""
    loads = [r["load_s"] for r in results]
    imp = statistics.median(r["import_s"] for r in results)
    return (
        f"| {preprocess} | {cache} | {statistics.median(loads):.2f} | {min(loads):.2f} "
        f"| {max(loads):.2f} | {imp:.2f} | {len(loads)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=default_root())
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--preprocess", nargs="+", default=["mean_image", "standardize"])
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"root={args.root} cpus={os.cpu_count()} load average (1 min)={load:.2f}\n")
    print(HEADER)
    for preprocess in args.preprocess:
        for warm, cache in ((False, "cold (empty DLEXP_CACHE)"), (True, "warm (filled)")):
            results = time_path(args.root, preprocess, args.runs, warm)
            print(row(preprocess, cache, results), flush=True)


if __name__ == "__main__":
    main()
