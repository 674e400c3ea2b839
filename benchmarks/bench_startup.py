"""Whole-process start-up of dlexp's smoke runs against the torch floor, timed alternately.

Each repeat runs every command once, in turn (floor, A, B, floor, A, B, ...), so a shared,
noisy machine slows them alike; it prints each command's median wall seconds and its excess
over the floor's. Runs write to a temporary outputs folder (hydra.run.dir).

Usage: python benchmarks/bench_startup.py [--repeats N] [--only NAME ...] [--before TREE]
From the repository root, with $DLEXP_DATA pointing at real CIFAR-10. `--before TREE` also times
each dlexp command on another checkout (`git worktree add TREE <commit>`), in the same rounds,
through this venv: PYTHONPATH=TREE ahead of the editable install, its conf/ linked into dlexp/.
"""

from __future__ import annotations

import argparse
import os
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


def run_once(command: list[str], scratch: Path, i: int, tree: Path | None = None) -> float:
    """Wall seconds of one process, start to exit (dlexp from `tree` when given); a failure
    stops the benchmark."""
    extra = [] if command is FLOOR else [f"hydra.run.dir={scratch}/run{i}"]
    env, cwd = None, None
    if tree is not None:  # the other checkout's dlexp before this one's editable install
        env, cwd = {**os.environ, "PYTHONPATH": str(tree)}, tree
    if "logger=mlflow" in command:
        extra.append(f"logger.mlflow.tracking_uri=sqlite:///{scratch}/mlflow.db")
    start = time.perf_counter()
    done = subprocess.run([*command, *extra], capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=list(COMMANDS), choices=list(COMMANDS))
    parser.add_argument("--before", type=Path, help="another checkout to time alongside")
    args = parser.parse_args()
    names = ["floor", *(n for n in args.only if n != "floor")]
    runs = [(name, name, None) for name in names]
    if args.before:
        link = args.before.resolve() / "dlexp" / "conf"  # the package-dir mapping, by hand
        if not link.exists():
            link.symlink_to(args.before.resolve() / "conf")
        runs += [(f"{n}@before", n, args.before.resolve()) for n in names if n != "floor"]
    times: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(args.repeats):
            for label, name, tree in runs:
                times[label].append(run_once(COMMANDS[name], Path(scratch), i, tree))
    floor = statistics.median(times["floor"])
    for label, each in times.items():
        median = statistics.median(each)
        print(
            f"{label:25s} median {median:6.2f} s  floor + {median - floor:5.2f} s"
            f"  ratio {median / floor:4.2f}  runs: {' '.join(f'{t:.2f}' for t in each)}"
        )


if __name__ == "__main__":
    main()
