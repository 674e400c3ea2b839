"""Run one benchmark child process: its wall time from start to exit and its own peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import REPO_ROOT


class RowError(RuntimeError):
    """A child process failed; the message is one line for the table."""


@dataclass
class Child:
    """What one finished child process cost."""

    wall_s: float  # parent's clock, from just before spawn to reaping
    peak_rss_mb: float  # this child's own ru_maxrss (not its children's, not its siblings')
    stdout: str

    def last_json(self) -> dict:
        """The JSON object the child printed on its last line of output."""
        lines = self.stdout.strip().splitlines()
        if not lines:
            raise RowError("printed nothing")
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError as err:
            raise RowError(f"last line is not JSON: {lines[-1][:80]!r}") from err


def run_child(args: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> Child:
    """Run `args` in the repository root; raise RowError with stderr's last line on failure.

    The child is reaped with os.wait4 on its own pid, so its rusage is its alone:
    getrusage(RUSAGE_CHILDREN) would give the maximum over every child reaped so far.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=out, stderr=err)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen won't reap it again
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = [line for line in stderr.strip().splitlines() if line.strip()] or ["(no stderr)"]
        raise RowError(f"exit {proc.returncode}: {tail[-1].strip()[:160]}")
    return Child(wall, usage.ru_maxrss / 1024, stdout)  # Linux ru_maxrss is in KiB


def python_module(module: str, *args: str) -> list[str]:
    """Argument list running `python -m <module> args` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def python_script(name: str, *args: str) -> list[str]:
    """Argument list running `python benchmarks/<name>.py args` with this interpreter."""
    return [sys.executable, str(REPO_ROOT / "benchmarks" / f"{name}.py"), *args]


def dlexp_train(*overrides: str) -> list[str]:
    """Argument list of the `dlexp-train` console script next to this interpreter."""
    script = Path(sys.executable).parent / "dlexp-train"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "dlexp"]
    return [*head, *overrides]


def env_with(**extra: str) -> dict[str, str]:
    """os.environ plus `extra`."""
    return {**os.environ, **extra}
