"""<run>/environment.json: what made a run, written when it starts.

The command line and working directory, the git commit (and whether the tree was dirty), the
versions of Python, dlexp, torch and NumPy, the resolved device and its name, the threads, and
the host and process id, so that a run with no metrics.json can later be told apart as still
running or killed.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

import dlexp
from dlexp.run.atomic_write import write_atomically

ENVIRONMENT_FILE = "environment.json"
GIT_TIMEOUT_S = 5  # a git that hangs (a network file system) must not hold up the run


def git_state(folder: Path) -> dict | None:
    """{"commit", "dirty"} of the git work tree holding `folder`; None outside one (or no git)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=GIT_TIMEOUT_S
        )
        if done.returncode != 0:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_record(device) -> dict:
    """The resolved device and what it is: the CPU model, or the GPU's name and count."""
    name = str(device)
    torch = sys.modules.get("torch")  # loaded by torch runs only; NumPy runs never import it
    if name.startswith("cuda") and torch is not None:
        return {
            "device": name,
            "name": torch.cuda.get_device_name(device),
            "count": torch.cuda.device_count(),
        }
    if name.startswith("mps"):
        return {"device": name, "name": "Apple MPS", "count": 1}
    return {"device": name, "name": cpu_name(), "count": os.cpu_count() or 1}


def versions() -> dict:
    torch = sys.modules.get("torch")
    return {
        "python": platform.python_version(),
        "dlexp": dlexp.__version__,
        "torch": None if torch is None else torch.__version__,  # None: this run never used it
        "numpy": np.__version__,
    }


def environment(device, threads: int, argv: list[str] | None = None) -> dict:
    cwd = Path.cwd()
    return {
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]] if argv is None else argv,
        "cwd": str(cwd),
        "git": git_state(cwd),
        "versions": versions(),
        **device_record(device),
        "threads": threads,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def write_environment(out: Path, device, threads: int, distributed: dict | None = None) -> dict:
    """Write <out>/environment.json. A resume's process takes the top level (its pid is the one
    to check), and the earlier processes' records move to `earlier`, oldest first. A
    data-parallel run adds `distributed`: world size, backend, and each rank's host and pid."""
    record = environment(device, threads)
    if distributed:
        record["distributed"] = distributed
    before = read_environment(out)
    if before:
        record["earlier"] = [*before.pop("earlier", []), before]
    text = json.dumps(record, indent=2) + "\n"
    write_atomically(out / ENVIRONMENT_FILE, [text.encode()])
    return record


def still_running(run: Path) -> int | None:
    """The pid of the process that runs `run`, when it is alive on this host; else None."""
    env = read_environment(run)
    pid = env.get("pid")
    if env.get("host") != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)  # signal 0: checks that the process exists, sends nothing
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, under another user
        return pid
    return pid


def read_environment(run: Path) -> dict:
    """A run's environment.json, or {} when it has none (runs from before it, or unreadable)."""
    try:
        return json.loads((Path(run) / ENVIRONMENT_FILE).read_text())
    except (OSError, ValueError):
        return {}
