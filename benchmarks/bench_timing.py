"""The stopwatch the benchmark scripts share (they run as `python benchmarks/<script>.py`)."""

from __future__ import annotations

import time


def time_ms(fn, inner: int = 1) -> float:
    """Mean milliseconds of `inner` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) * 1e3 / inner
