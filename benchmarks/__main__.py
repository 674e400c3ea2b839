"""Run dlexp's benchmark suite and write its dated table into docs/benchmarks.md.

Usage: python -m benchmarks [--quick] [--repeats N] [--rows NAME ...] [--data DIR]
From the repository root. Rows: the NumPy run against a naive script, start-up, the NumPy step
against its matmuls, the torch MLP run against a bare script, the ConvNet step (eager, compiled,
bf16), the batch norms and the data load. Each row runs in child processes, with interleaved
repeats, medians and each child's peak RSS. `--quick` is a smoke run on tiny data: one repeat,
few steps, no timing judged, nothing written into docs/.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO_ROOT, import_script
from benchmarks.suite_report import describe_machine, gpu_name, section, write_docs
from benchmarks.suite_rows import Row, Suite, data_load, numpy_run, startup, torch_mlp_run
from benchmarks.suite_rows_child import batchnorm, convnet_step, numpy_step
from benchmarks.suite_run import RowError, python_module, run_child

ROWS = {  # name -> the function measuring it; the table keeps this order
    "numpy_run": numpy_run,
    "startup": startup,  # after numpy_run: --quick reuses its start-ups
    "numpy_step": numpy_step,
    "torch_mlp_run": torch_mlp_run,
    "convnet_step": convnet_step,
    "batchnorm": batchnorm,
    "data_load": data_load,
}
DOCS = REPO_ROOT / "docs" / "benchmarks.md"


class OneLineParser(argparse.ArgumentParser):
    """Bad input is one line on stderr and exit status 2."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: tiny data, 1 repeat, few steps; writes no docs",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="interleaved repeats per row (default 3; --quick: 1)",
    )
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=list(ROWS),
        default=list(ROWS),
        metavar="NAME",
        help=f"only these rows ({', '.join(ROWS)}); writes no docs",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder holding cifar-10-batches-py (default: $DLEXP_DATA, "
        "else ~/.cache/cifar10-shared)",
    )
    parser.add_argument("--docs", type=Path, default=DOCS, help="the markdown file to update")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    args.repeats = args.repeats or (1 if args.quick else 3)
    if not args.quick:
        args.data = args.data or import_script("bench_data_load").default_root()
        folder = args.data / "cifar-10-batches-py"
        if not (folder / "data_batch_1").exists() and not (args.data / "data_batch_1").exists():
            parser.error(f"no CIFAR-10 under {args.data}; set DLEXP_DATA or pass --data")
    return args


def say(message: str) -> None:
    print(f"[benchmarks {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_rows(suite: Suite, names: list[str]) -> tuple[list[Row], bool]:
    """Every chosen row, in table order; a failing row becomes a 'failed' line, not an abort."""
    rows, ok = [], True
    for name in [n for n in ROWS if n in names]:
        start = time.perf_counter()
        try:
            rows += ROWS[name](suite)
        except (RowError, KeyError, ValueError, OSError) as err:
            rows.append(Row(name, name, note=f"failed: {err}"))
            ok = False
        say(f"{name}: done in {time.perf_counter() - start:.0f} s")
    return rows, ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gpu = gpu_name()
    machine = describe_machine(gpu)
    say(f"{'quick smoke run' if args.quick else 'full run'} on {machine}")
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="dlexp-bench-") as tmp:
        env = dict(os.environ)
        if args.quick:  # tiny data and a throw-away array cache; the user's cache stays as it is
            args.data = Path(tmp) / "data"
            run_child(python_module("benchmarks.tiny_cifar", str(args.data)))  # numpy: a child
            env["DLEXP_CACHE"] = str(Path(tmp) / "cache")
        suite = Suite(args.quick, args.repeats, str(args.data), env, say, gpu)
        rows, ok = run_rows(suite, args.rows)
    body = section(rows, machine, (load_start, os.getloadavg()[0]), args.repeats)
    print("\n" + body.split("\n", 2)[2] if args.quick else "\n" + body)
    if args.quick or args.rows != list(ROWS):
        say("not writing docs: " + ("--quick" if args.quick else "only some rows ran"))
    else:
        write_docs(args.docs, body)
        say(f"wrote the table into {args.docs}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
