"""The grid sweeper composes every job before the first runs: one bad value refuses the sweep."""

from __future__ import annotations

import subprocess

from dlexp.run.folder import job_number
from tests.runs import DLEXP_TRAIN, assert_refused, tiny_sweep


def grid(tiny_cifar, sweep, *swept: str) -> subprocess.CompletedProcess:
    args = [*DLEXP_TRAIN, "-m", "hparams_search=grid", *swept, *tiny_sweep(tiny_cifar, sweep)]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_a_job_that_cannot_compose_refuses_the_sweep_and_nothing_runs(tiny_cifar, tmp_path):
    proc = grid(tiny_cifar, tmp_path / "sweep", "optim.lr=1e-3,abc")
    line = "dlexp-train: error: job 1 (optim.lr=abc): expected a number, got 'abc'; nothing was run"
    assert_refused(proc, line, tmp_path / "sweep")


def test_the_refusal_names_the_swept_overrides_of_the_job(tiny_cifar, tmp_path):
    proc = grid(tiny_cifar, tmp_path / "sweep", "optim.lr=1e-3,2e-3", "norm=none,bogus")
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("dlexp-train: error: job 1 (optim.lr=0.001 norm=bogus): ")
    assert "bogus" in line and line.endswith("; nothing was run")
    assert not (tmp_path / "sweep").exists()


def test_a_good_grid_runs_every_job(tiny_cifar, tmp_path):
    sweep = tmp_path / "sweep"
    proc = grid(tiny_cifar, sweep, "optim.lr=1e-3,2e-3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(job_number(p.parent) for p in sweep.glob("*/metrics.json")) == [0, 1]
