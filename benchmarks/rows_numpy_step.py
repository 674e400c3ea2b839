"""Suite child: the NumPy MLP step against its two big matmuls (bench_numpy_step's measure).

Usage: python -m benchmarks.rows_numpy_step [--repeats 300] [--inner 5]
Prints one JSON line of medians; the step and the matmuls are interleaved inside `measure`.
"""

from __future__ import annotations

import argparse
import json
import statistics

from benchmarks import import_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300, help="alternating samples of each")
    parser.add_argument("--inner", type=int, default=5, help="calls averaged per sample")
    args = parser.parse_args()
    bench = import_script("bench_numpy_step")
    samples = bench.measure(args.repeats, args.inner)
    pairs = zip(samples["step"], samples["matmuls"], strict=True)
    print(json.dumps({
        "step_ms": statistics.median(samples["step"]),
        "matmuls_ms": statistics.median(samples["matmuls"]),
        "paired_ratio": statistics.median(step / mm for step, mm in pairs),
        "samples": args.repeats,
        # newer bench_numpy_step.py also times the step module by module (allocating)
        "module_step_ms": statistics.median(samples.get("module_step") or [float("nan")]),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
