"""Idle slot-time of a finished sweep, from the files its jobs left, so that any launcher's sweep
can be measured alike: a job is busy from its .hydra/config.yaml (written as the job starts) to
its metrics.json (written as it ends); the sweep starts at multirun.yaml.

Idle slot-time is the time a slot has no job running while jobs remain to be started: from the
sweep's start to the last job's start, over slots x that span.

    python benchmarks/slot_occupancy.py outputs/torch_mlp/multiruns/<stamp> --slots 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dlexp.search.worker_pool import SlotTimes


def occupancy(sweep: Path, slots: int) -> dict:
    """The pool's own measure (SlotTimes.idle_share), on the times the job files give."""
    times = SlotTimes(start=(sweep / "multirun.yaml").stat().st_mtime)
    for job in sweep.iterdir():
        config, record = job / ".hydra" / "config.yaml", job / "metrics.json"
        if config.is_file() and record.is_file():
            times.busy.append((0, config.stat().st_mtime, record.stat().st_mtime))
    times.drained = max(a for _, a, _ in times.busy)  # the last job's start
    end = max(b for _, _, b in times.busy)
    return {
        "jobs": len(times.busy),
        "wall_s": round(end - times.start, 1),
        "idle_share": times.idle_share(slots),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--slots", type=int, required=True)
    args = parser.parse_args()
    result = occupancy(args.sweep, args.slots)
    print(
        f"{args.sweep}: {result['jobs']} jobs, {result['wall_s']} s from multirun.yaml to the "
        f"last metrics.json, idle slot-time {100 * result['idle_share']:.1f}%"
    )


if __name__ == "__main__":
    main()
