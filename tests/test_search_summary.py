"""A sweep's summary (dlexp.search.summary) from real multiruns in a subprocess, dlexp-plot over
one, and sweeps with failing jobs under the basic, joblib and submitit launchers."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from dlexp.report.plot import expand_runs, plot_runs, run_labels
from dlexp.run.folder import job_number
from dlexp.search.summary import collect_jobs, write_summary
from tests.runs import DLEXP_TRAIN, tiny_sweep


def test_multirun_sweep_writes_jobs_and_summary(tiny_cifar, tmp_path):
    sweep = tmp_path / "sweep"
    env = {**os.environ, "DLEXP_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [*DLEXP_TRAIN, "-m", "optim.lr=1e-3,2e-3", *tiny_sweep(tiny_cifar, sweep)],
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
    assert [r["run_dir"] for r in rows] == [job.name for job in jobs]  # relative to summary.md
    md = (sweep / "summary.md").read_text()
    assert str(tmp_path) not in md
    assert "optim.lr=0.001" in md and "optim.lr=0.002" in md and "val/accuracy" in md

    written = plot_runs(expand_runs([sweep]), sweep / "plots")  # dlexp-plot's default folder
    # 2 runs x (train, val, test) curves in each figure
    assert {p.name: n for p, n in written.items()} == {"accuracy.png": 6, "loss.png": 6}
    assert all(p.stat().st_size > 10_000 for p in written)
    assert run_labels(expand_runs([sweep])) == {
        jobs[0]: "lr=0.001",
        jobs[1]: "lr=0.002",
    }  # the legend names only what differs


def test_summary_of_an_empty_sweep_writes_nothing(tmp_path):
    assert write_summary(tmp_path) == []
    assert not (tmp_path / "summary.csv").exists()


# 1e6 diverges, -1 is refused by the optimizer; 1e-3 and 2e-3 train.
LEARNING_RATES = "optim.lr=1e6,1e-3,-1,2e-3"


def run_sweep(tiny_cifar, sweep: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        *DLEXP_TRAIN, "-m", LEARNING_RATES,
        "max_steps=20", "eval_freq=10", "log_freq=5", "batch_size=20",
        "data.validation_size=50", f"data.root={tiny_cifar}", "progress=false",
        f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)


LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"],
}


@pytest.mark.parametrize(
    "launcher",
    [pytest.param(n, marks=pytest.mark.slow) if n == "submitit_local" else n for n in LAUNCHERS],
)
def test_a_failing_job_is_recorded_and_the_sweep_goes_on(tiny_cifar, tmp_path, launcher):
    sweep = tmp_path / "sweep"
    extra = LAUNCHERS[launcher]
    proc = run_sweep(tiny_cifar, sweep, *extra)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "dlexp-train: 2 job(s) of the sweep failed; see the summary"
    )
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["failed", "completed", "failed", "completed"]
    assert rows[0]["reason"].startswith("training diverged: train loss is nan at step 5")
    assert rows[0]["steps"] == "5"
    assert rows[2]["reason"] == "optim (sgd): learning rate must be > 0, got -1.0"
    assert rows[2]["steps"] == "0"
    for row in (rows[1], rows[3]):  # the good jobs ran to the end, untouched by the bad ones
        record = json.loads((sweep / row["run_dir"] / "metrics.json").read_text())
        assert record["status"] == "completed" and record["steps"] == 20
        assert float(row["objective"]) == record["objective"] == record["best"]["val/accuracy"]
        if launcher == "joblib":  # two jobs on this machine's cores: each takes its share
            assert record["timing"]["threads"] == max(1, (os.cpu_count() or 1) // 2)
    failed = json.loads((sweep / "0" / "metrics.json").read_text())
    assert failed["status"] == "failed" and failed["objective"] is None
    assert "job failed: training diverged" in (sweep / "0" / "train.log").read_text()


def test_a_job_that_died_without_metrics_is_listed_as_failed(tmp_path):
    for job in ("0", "1"):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(f"- seed={job}\n")
    (tmp_path / "1" / "metrics.json").write_text(
        json.dumps({"status": "completed", "steps": 5, "objective": 0.5, "final": {}})
    )
    rows = collect_jobs(tmp_path)
    assert [(r["job"], r["status"]) for r in rows] == [("0", "failed"), ("1", "completed")]
    assert rows[0]["reason"] == "no metrics.json: the job's process died"


def test_trials_table_names_job_folders_relative_to_the_sweep(tmp_path):
    """trials.md, like summary.md, names job folders relative to itself, never absolutely."""
    optuna = pytest.importorskip("optuna")
    from dlexp.search.study_outputs import write_trials_table

    sweep = tmp_path / "outputs" / "numpy_mlp" / "multiruns" / "2026"
    study = optuna.create_study()
    for n, job_dir in enumerate([sweep / "0_optim.lr=0.1", sweep / "1_optim.lr=0.2", ""]):
        trial = study.ask()
        trial.suggest_float("optim.lr", 0.01, 1)
        trial.set_user_attr("job_dir", str(job_dir))
        study.tell(trial, 0.5 + n / 10)
    sweep.mkdir(parents=True)
    rows = write_trials_table(study, sweep)
    assert [r["job_dir"] for r in rows] == ["0_optim.lr=0.1", "1_optim.lr=0.2", ""]
    md = (sweep / "trials.md").read_text()
    assert "| 0_optim.lr=0.1 |" in md and str(tmp_path) not in md
    with (sweep / "trials.csv").open() as f:
        assert [r["job_dir"] for r in csv.DictReader(f)] == ["0_optim.lr=0.1", "1_optim.lr=0.2", ""]
