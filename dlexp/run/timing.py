"""Wall-clock helpers for the run's `timing` record."""

from __future__ import annotations

import os
import time

_IMPORTED_AT = time.time()
_previous_run_end: float | None = None


def process_start_time() -> float:
    """Unix time this process started (Linux /proc), else when dlexp.run.timing was imported."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat: start time in clock ticks since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _IMPORTED_AT


def startup_origin() -> float:
    """When this run's start-up began: the process start, else the previous run's end."""
    # A -m sweep runs its jobs one after another in one process, as a notebook calling train()
    # twice does; counting from the process start would bill each job for all the earlier ones.
    return process_start_time() if _previous_run_end is None else _previous_run_end


def mark_run_end() -> None:
    """Record that a run has finished, so that the next run's start-up is counted from here."""
    global _previous_run_end
    _previous_run_end = time.time()
