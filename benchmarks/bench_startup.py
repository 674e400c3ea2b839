"""Whole-process start-up of dlexp's smoke runs against the torch floor, timed alternately.

Each repeat runs every command once, in turn (floor, A, B, floor, A, B, ...), so a shared,
noisy machine slows them alike; it prints each command's median wall seconds and its excess
over the floor's. Runs write to a temporary outputs folder (hydra.run.dir).

Usage: python benchmarks/bench_startup.py [--repeats N] [--only NAME ...]
From the repository root, with $DLEXP_DATA pointing at real CIFAR-10.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = [sys.executable, "benchmarks/startup_floor.py"]
TRAIN = [str(Path(sys.executable).with_name("dlexp-train"))]
COMMANDS = {
    "floor": FLOOR,
    "torch_mlp": [*TRAIN, "model=torch_mlp", "debug=fast"],
    "convnet": [*TRAIN, "model=convnet", "debug=fast"],
    "torch_mlp_mlflow": [*TRAIN, "model=torch_mlp", "debug=fast", "logger=mlflow"],
}


def run_once(command: list[str], scratch: Path, i: int) -> float:
    """Wall seconds of one process, start to exit; a failure stops the benchmark."""
    extra = [] if command is FLOOR else [f"hydra.run.dir={scratch}/run{i}"]
    if "logger=mlflow" in command:
        extra.append(f"logger.mlflow.tracking_uri=sqlite:///{scratch}/mlflow.db")
    start = time.perf_counter()
    done = subprocess.run([*command, *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=list(COMMANDS), choices=list(COMMANDS))
    args = parser.parse_args()
    names = ["floor", *(n for n in args.only if n != "floor")]
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(args.repeats):
            for name in names:
                times[name].append(run_once(COMMANDS[name], Path(scratch), i))
    floor = statistics.median(times["floor"])
    for name in names:
        median = statistics.median(times[name])
        runs = " ".join(f"{t:.2f}" for t in times[name])
        print(
            f"{name:18s} median {median:6.2f} s  floor + {median - floor:5.2f} s"
            f"  ratio {median / floor:4.2f}  runs: {runs}"
        )


if __name__ == "__main__":
    main()
