"""Suite child: `load_cifar10` from a fresh process, with whatever DLEXP_CACHE holds.

Usage: DLEXP_CACHE=DIR python -m benchmarks.rows_data_load --root DIR
The same measurement as bench_data_load.py's child (import apart from load), without its
check for the full 45 000 training images, so that --quick can run it on tiny data.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the folder holding cifar-10-batches-py")
    parser.add_argument("--preprocess", default="mean_image")
    args = parser.parse_args()
    t0 = time.perf_counter()
    from dlexp.data import load_cifar10

    t1 = time.perf_counter()
    data = load_cifar10(args.root, validation_size=0, preprocess=args.preprocess, download=False)
    t2 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "train": len(data.train)}))


if __name__ == "__main__":
    main()
