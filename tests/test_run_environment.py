"""environment.json: what made a run, read back against the interpreter, git and the OS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import dlexp
from dlexp.report.collect import read_run
from dlexp.report.sections import environment_table
from dlexp.run.environment import git_state, read_environment, still_running, write_environment
from dlexp.run.record import read_job_record
from dlexp.training import train


def git(folder, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_run_records_versions_device_threads_and_process(tiny_cfg, tmp_path):
    train(tiny_cfg("max_steps=4", "eval_freq=2"))
    run = tmp_path / "run"
    env = read_environment(run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert env["versions"] == {
        "python": ".".join(map(str, sys.version_info[:3])),
        "dlexp": dlexp.__version__,
        "torch": sys.modules["torch"].__version__ if "torch" in sys.modules else None,
        "numpy": np.__version__,
    }
    assert (env["device"], env["threads"]) == ("cpu", metrics["timing"]["threads"])
    assert (env["host"], env["pid"]) == (socket.gethostname(), os.getpid())
    assert env["cwd"] == os.getcwd() and env["command"][0]
    assert env["name"]  # the CPU's model name


def test_a_later_process_keeps_the_earlier_processes_records(tmp_path):
    """A resume writes the file again: the newest process on top, the earlier ones kept."""
    first = write_environment(tmp_path, "cpu", threads=2)
    second = write_environment(tmp_path, "cpu", threads=1)
    third = read_environment(tmp_path)
    assert third == second and third["threads"] == 1
    assert third["earlier"] == [first]
    write_environment(tmp_path, "cpu", threads=3)
    assert [e["threads"] for e in read_environment(tmp_path)["earlier"]] == [2, 1]


def test_the_git_commit_and_a_dirty_tree_are_recorded(tmp_path):
    assert git_state(tmp_path) is None  # not a repository
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    assert git_state(tmp_path) == {"commit": git(tmp_path, "rev-parse", "HEAD"), "dirty": False}
    (tmp_path / "a.txt").write_text("two")
    assert git_state(tmp_path)["dirty"] is True


def fake_environment(run, pid: int) -> None:
    run.mkdir(parents=True, exist_ok=True)
    record = {"host": socket.gethostname(), "pid": pid}
    (run / "environment.json").write_text(json.dumps(record))


def test_a_run_without_metrics_reads_running_while_its_process_lives(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        fake_environment(tmp_path / "run", sleeper.pid)
        assert still_running(tmp_path / "run") == sleeper.pid
        assert read_job_record(tmp_path / "run")["status"] == "running"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert still_running(tmp_path / "run") is None
    assert read_job_record(tmp_path / "run")["status"] == "failed"


@pytest.mark.parametrize("host", ["another-host", None])
def test_a_record_from_another_host_is_never_running(tmp_path, host):
    (tmp_path / "environment.json").write_text(json.dumps({"host": host, "pid": os.getppid()}))
    assert still_running(tmp_path) is None


def test_the_report_shows_the_environment(tiny_cfg, tmp_path):
    train(tiny_cfg("max_steps=4", "eval_freq=2"))
    record = read_run(tmp_path / "run")
    assert record.device.startswith("cpu (")  # resolved, not "auto (as configured)"
    rows = dict(environment_table(record.environment).rows)
    assert rows["numpy"] == np.__version__ and rows["dlexp"] == dlexp.__version__
    assert rows["host (pid)"] == f"{socket.gethostname()} ({os.getpid()})"
