"""Sweeps with a failing job, under the basic and joblib launchers, in real subprocesses."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlexp.search.summary import collect_jobs

# 1e6 diverges, -1 is refused by the optimizer; 1e-3 and 2e-3 train.
LEARNING_RATES = "optim.lr=1e6,1e-3,-1,2e-3"


def run_sweep(tiny_cifar, sweep: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        sys.executable, "-m", "dlexp", "-m", LEARNING_RATES,
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


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
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
        record = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
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
