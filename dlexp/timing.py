"""Wall-clock helpers for the run's `timing` record."""

from __future__ import annotations

import os
import time

_IMPORTED_AT = time.time()


def process_start_time() -> float:
    """Unix time this process started (Linux /proc), else when dlexp.timing was imported."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat: start time in clock ticks since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _IMPORTED_AT
