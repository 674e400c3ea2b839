"""Suite child: custom_bn and autograd_bn against nn.BatchNorm2d (bench_batchnorm's measure).

Usage: python -m benchmarks.rows_batchnorm [--repeats 20] [--inner 3] [--shapes N]
Forward + backward at the ConvNet's norm shapes, summed over the shapes; prints one JSON line.
`--shapes N` keeps only the N smallest shapes (the --quick smoke run).
"""

from __future__ import annotations

import argparse
import inspect
import json

from benchmarks import import_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="rotating samples of each norm")
    parser.add_argument("--inner", type=int, default=3, help="calls averaged per sample")
    parser.add_argument("--shapes", type=int, default=None, help="only the N smallest shapes")
    args = parser.parse_args()
    bench = import_script("bench_batchnorm")
    shapes = bench.SHAPES[-args.shapes :] if args.shapes else bench.SHAPES
    # Newer bench_batchnorm.py can add a compiled custom_bn; the suite's row is the eager one.
    params = inspect.signature(bench.measure_shape).parameters
    extra = {"compiled": False} if "compiled" in params else {}
    results = [bench.measure_shape(shape, args.repeats, args.inner, **extra) for shape in shapes]
    summed = {name: sum(ms[name] for ms in results) for name in bench.NORMS}  # ms, all shapes
    print(json.dumps({**summed, "shapes": len(shapes), "goal": bench.GOAL_RATIO}))


if __name__ == "__main__":
    main()
