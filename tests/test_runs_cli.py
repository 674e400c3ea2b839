"""dlexp-runs over hand-made run folders: statuses (running and killed from environment.json's
pid), the refused config's leftover left out, filters, order, seed groups, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from dlexp.report.runs_cli import main
from tests.hand_made_runs import completed, failed, write_run

OBJECTIVE = 0.43219876543210987  # every digit must come back through --json


@pytest.fixture
def sleeper():
    """A live process to stand for a running run (as a run records its own pid)."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has ended and been reaped: a run killed with kill -9."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def outputs(tmp_path, sleeper, dead_pid) -> Path:
    """outputs/ with a sweep over two seeds, two single runs, a failed, a running and a killed
    run, and the folder an older dlexp's refused config left behind."""
    root = tmp_path / "outputs"
    runs = root / "numpy_mlp" / "runs"
    sweep = root / "numpy_mlp" / "multiruns" / "2026-01-02_10-00-00_000000"
    for seed, (val, test) in enumerate([(0.41, 0.40), (0.45, 0.43), (0.43, 0.44)], start=1):
        write_run(sweep / f"{seed - 1}_seed={seed}", seed, {}, completed(val, test), dead_pid)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    record = completed(0.5, 0.49, best_val=OBJECTIVE, wall_s=75.0)
    write_run(runs / "2026-01-01_09-00-00_000001", 1, {"optim.lr": "2e-3"}, record, dead_pid)
    write_run(runs / "2026-01-01_09-30-00_000002", 1, {"optim.lr": "0.01"}, completed(0.3, 0.3))
    diverged = failed("training diverged: train loss is nan at step 10", 10)
    diverged["final"] = {"train/loss": float("nan")}  # json.dumps writes NaN, as the run did
    write_run(runs / "2026-01-01_10-00-00_000003", 2, {"optim.lr": "10"}, diverged, dead_pid)
    write_run(runs / "2026-01-01_11-00-00_000004", 3, {"optim.lr": "0.02"}, None, sleeper)
    write_run(runs / "2026-01-01_12-00-00_000005", 4, {"optim.lr": "0.03"}, None, dead_pid)
    refused = write_run(runs / "2026-01-01_13-00-00_000006", 5, {"model.foo": "1"},
                        failed("model numpy_mlp has no key 'foo'", 0))  # fmt: skip
    (refused / "train.log").write_text("")
    return root


def listed(capsys, *args: str):
    main([*map(str, args), "--json"])
    return json.loads(capsys.readouterr().out, parse_constant=no_such_number)


def no_such_number(name: str):
    raise AssertionError(f"--json printed {name}, which JSON does not have")


def test_every_run_is_listed_with_its_status(outputs, capsys):
    runs = {r["name"]: r for r in listed(capsys, outputs)}
    assert {name: r["status"] for name, r in runs.items()} == {
        "numpy_mlp/multiruns/2026-01-02_10-00-00_000000/0_seed=1": "completed",
        "numpy_mlp/multiruns/2026-01-02_10-00-00_000000/1_seed=2": "completed",
        "numpy_mlp/multiruns/2026-01-02_10-00-00_000000/2_seed=3": "completed",
        "numpy_mlp/runs/2026-01-01_09-00-00_000001": "completed",
        "numpy_mlp/runs/2026-01-01_09-30-00_000002": "completed",
        "numpy_mlp/runs/2026-01-01_10-00-00_000003": "failed",
        "numpy_mlp/runs/2026-01-01_11-00-00_000004": "running",
        "numpy_mlp/runs/2026-01-01_12-00-00_000005": "killed",
    }  # and no row for the refused config's folder (13-00-00)
    first = runs["numpy_mlp/runs/2026-01-01_09-00-00_000001"]
    assert set(first) >= {"name", "path", "status", "started", "task", "overrides", "objective",
                          "final", "best", "steps", "wall_s"}  # fmt: skip
    assert first["started"].startswith("2026-01-01T09:00:00")
    assert first["task"] == "numpy_mlp"
    assert first["overrides"] == {"optim.lr": "2e-3", "seed": "1"}  # plumbing left out
    assert (first["steps"], first["wall_s"], first["final"]["test/accuracy"]) == (100, 75.0, 0.49)
    assert Path(first["path"]) == outputs / first["name"]


def test_json_round_trips_the_objective(outputs, capsys):
    runs = {r["name"]: r for r in listed(capsys, outputs)}
    record = json.loads(
        (outputs / "numpy_mlp/runs/2026-01-01_09-00-00_000001/metrics.json").read_text()
    )
    assert runs["numpy_mlp/runs/2026-01-01_09-00-00_000001"]["objective"] == OBJECTIVE
    assert record["objective"] == OBJECTIVE  # the same float, bit for bit


def test_filters(outputs, capsys):
    names = lambda *a: [r["name"].rsplit("/", 1)[-1] for r in listed(capsys, outputs, *a)]  # noqa: E731
    assert names("--status", "running,killed") == ["2026-01-01_11-00-00_000004",
                                                   "2026-01-01_12-00-00_000005"]  # fmt: skip
    assert names("--where", "optim.lr=0.002") == ["2026-01-01_09-00-00_000001"]  # 2e-3 is 0.002
    assert len(names("--where", "seed=1")) == 3
    assert names("--where", "seed=1", "--where", "optim.lr=0.01") == ["2026-01-01_09-30-00_000002"]
    assert names("--task", "numpy_mlp", "--status", "failed") == ["2026-01-01_10-00-00_000003"]
    assert names("--task", "convnet") == []


def test_sort_puts_the_best_first_and_runs_without_the_metric_last(outputs, capsys):
    runs = listed(capsys, outputs, "--sort", "test/accuracy")
    tests = [r["final"].get("test/accuracy") for r in runs]
    assert tests[:5] == [0.49, 0.44, 0.43, 0.40, 0.3] and tests[5:] == [None] * 3
    reverse = listed(capsys, outputs, "--sort", "test/accuracy", "--reverse")
    assert [r["final"].get("test/accuracy") for r in reverse][:5] == tests[:5][::-1]
    started = [r["started"] for r in listed(capsys, outputs)]  # by default: oldest first
    assert started == sorted(started)


def test_group_seeds_folds_the_sweep_into_mean_and_interval(outputs, capsys):
    groups = listed(capsys, outputs, "--group-seeds")
    sweep = next(g for g in groups if len(g["runs"]) == 3)
    tests = np.array([0.40, 0.43, 0.44])
    low, high = stats.t.interval(0.95, 2, tests.mean(), stats.sem(tests))
    estimate = sweep["final"]["test/accuracy"]
    assert (estimate["n"], estimate["mean"]) == (3, pytest.approx(tests.mean(), rel=1e-12))
    assert (estimate["ci95_low"], estimate["ci95_high"]) == (
        pytest.approx(low),
        pytest.approx(high),
    )
    assert sweep["seeds"] == [1, 2, 3] and sweep["status"] == {"completed": 3}
    assert len(groups) == 6  # the sweep, and the five single runs each alone


def test_table_csv_and_the_group_table(outputs, capsys):
    main([str(outputs)])
    table = capsys.readouterr().out
    assert "numpy_mlp/runs/2026-01-01_11-00-00_000004" in table and "running" in table
    assert "lr=2e-3" in table and "1m15s" in table  # only the differing overrides, short names
    assert table.splitlines()[-1] == "8 runs: 5 completed, 1 failed, 1 running, 1 killed"
    main([str(outputs), "--csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 8 and float(rows[0]["final.test/accuracy"]) == 0.49
    main([str(outputs), "--group-seeds"])
    grouped = capsys.readouterr().out
    assert "(3 runs)" in grouped and "0.4233 ± " in grouped and "1-3" in grouped


STATUSES = "completed, failed, pruned, early_stopped, interrupted, running, killed"
BAD_INPUT = {  # arguments: the one line on stderr
    "missing": "missing is not a folder",
    "--where optim.lr": "--where optim.lr: expected key=value, as in --where optim.lr=0.001",
    "--where optim.lrr=1": "--where optim.lrr: no listed run has this key; did you mean optim.lr?",
    "--status complete": f"--status complete: no such status; did you mean completed? ({STATUSES})",
}


@pytest.mark.parametrize(("args", "line"), BAD_INPUT.items())
def test_bad_input_is_one_line_and_exit_2(outputs, args, line):
    command = [sys.executable, "-m", "dlexp.report.runs_cli", *args.split()]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=outputs.parent, timeout=60)
    assert proc.stderr.splitlines() == [f"dlexp-runs: error: {line}"]
    assert (proc.returncode, proc.stdout) == (2, "")


def test_a_run_without_metrics_says_why_it_reads_as_killed(tmp_path, capsys, dead_pid):
    write_run(tmp_path / "gone", 1, {}, None, dead_pid)
    elsewhere = write_run(tmp_path / "elsewhere", 2, {}, None, dead_pid)
    env = json.loads((elsewhere / "environment.json").read_text())
    (elsewhere / "environment.json").write_text(json.dumps({**env, "host": "node-17"}))
    reasons = {r["name"]: (r["status"], r["reason"]) for r in listed(capsys, tmp_path)}
    cannot_tell = (
        "no metrics.json: it ran on node-17, where this host cannot tell whether it still runs"
    )
    assert reasons == {
        "gone": ("killed", "no metrics.json: its process is gone"),
        "elsewhere": ("killed", cannot_tell),
    }
