"""A real multirun in a subprocess, its summary, and dlexp-plot over the sweep."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

from dlexp.report.plot import expand_runs, plot_runs, run_labels
from dlexp.report.plot import main as plot_main
from dlexp.run.folder import job_number
from dlexp.search.summary import write_summary
from dlexp.train import train


def test_multirun_sweep_writes_jobs_and_summary(tiny_cifar, tmp_path):
    sweep = tmp_path / "sweep"
    env = {**os.environ, "DLEXP_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlexp",
            "-m",
            "optim.lr=1e-3,2e-3",
            "max_steps=4",
            "eval_freq=2",
            "batch_size=20",
            "data.validation_size=50",
            f"data.root={tiny_cifar}",
            "progress=false",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())  # `<number>_<overrides>`
    assert [job_number(job) for job in jobs] == [0, 1]
    for job in jobs:
        assert (job / "metrics.json").exists()
        assert list(job.glob("events.out.tfevents.*"))
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    # Hydra records each job's overrides normalised (1e-3 -> 0.001)
    assert [r["overrides"].split()[0] for r in rows] == ["optim.lr=0.001", "optim.lr=0.002"]
    assert all(f"data.root={tiny_cifar}" in r["overrides"] for r in rows)
    assert all(0 <= float(r["val/accuracy"]) <= 1 for r in rows)
    assert [r["run_dir"] for r in rows] == [str(job) for job in jobs]
    md = (sweep / "summary.md").read_text()
    assert "optim.lr=0.001" in md and "optim.lr=0.002" in md and "val/accuracy" in md

    written = plot_runs(expand_runs([sweep]), sweep / "plots")  # dlexp-plot's default folder
    # 2 runs x (train, val, test) curves in each figure
    assert {p.name: n for p, n in written.items()} == {"accuracy.png": 6, "loss.png": 6}
    assert all(p.stat().st_size > 10_000 for p in written)
    assert run_labels(expand_runs([sweep])) == {
        jobs[0]: "lr=0.001",
        jobs[1]: "lr=0.002",
    }  # the legend names only what differs


def test_plot_a_single_run(tiny_cfg, tmp_path, capsys):
    train(tiny_cfg("max_steps=6", "eval_freq=3"))
    plot_main([str(tmp_path / "run"), "--out", str(tmp_path / "plots")])
    out = capsys.readouterr().out
    assert "accuracy.png (3 curves)" in out and "loss.png (3 curves)" in out
    assert (tmp_path / "plots" / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_refuses_a_folder_without_runs(tmp_path, capsys):
    try:
        plot_main([str(tmp_path)])
    except SystemExit as stop:
        assert stop.code == 2
    assert "holds no TensorBoard event files" in capsys.readouterr().err


def test_summary_of_an_empty_sweep_writes_nothing(tmp_path):
    assert write_summary(tmp_path) == []
    assert not (tmp_path / "summary.csv").exists()
