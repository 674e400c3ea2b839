"""`python -m benchmarks`: the --quick smoke run, its one-line errors, and the docs section."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.suite_report import END, START, replace_section

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
ROW_NAMES = [
    "numpy_run", "startup", "numpy_step", "torch_mlp_run", "convnet_step_eager",
    "convnet_step_compiled", "convnet_step_bf16", "batchnorm", "data_load_cold", "data_load_warm",
]  # fmt: skip


def run_benchmarks(*args: str, timeout: float) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "benchmarks", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # ~25 s: every benchmark row once
def test_quick_run_prints_every_row_and_leaves_docs_alone():
    before = hashlib.sha256(DOCS.read_bytes()).hexdigest()
    proc = run_benchmarks("--quick", timeout=300)  # ~60 s on a loaded 2-core machine
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in ROW_NAMES:
        assert f"| `{name}` |" in proc.stdout, name
    assert "failed:" not in proc.stdout
    assert "skipped in --quick" in proc.stdout  # the compiled ConvNet step
    assert hashlib.sha256(DOCS.read_bytes()).hexdigest() == before


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for args in (["--repeats", "0"], ["--rows", "nope"], ["--data", str(tmp_path)]):
        proc = run_benchmarks(*args, timeout=60)
        assert proc.returncode == 2, args
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert proc.stdout == ""


def test_replace_section_is_idempotent_and_keeps_the_rest():
    text = "# Benchmarks\n\nhand-written\n"
    once = replace_section(text, "table 1")
    assert once.startswith(text.rstrip()) and f"{START}\ntable 1\n{END}" in once
    twice = replace_section(once, "table 2")
    assert twice == once.replace("table 1", "table 2")
    assert replace_section(twice, "table 2") == twice


@pytest.mark.realdata  # ~15 s: the floor and one torch MLP smoke run on the real CIFAR-10
def test_startup_benchmark_times_the_floor_and_a_smoke_run():
    cmd = [sys.executable, "benchmarks/bench_startup.py", "--repeats", "1", "--only", "torch_mlp"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["floor", "torch_mlp"]
    assert all("median" in line and "floor +" in line for line in lines)
