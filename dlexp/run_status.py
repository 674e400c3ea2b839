"""How a run ended: the `status` in every run's metrics.json, and the exception that stops a run."""

from __future__ import annotations

# completed: reached max_steps; failed: an error (the one-line reason is recorded);
# pruned: the search's pruner stopped it; early_stopped: early_stop.patience ran out;
# interrupted: a signal (Ctrl-C, SIGTERM, SIGUSR2) stopped it after a checkpoint.
STATUSES = ("completed", "failed", "pruned", "early_stopped", "interrupted")
SUCCESSFUL = ("completed", "early_stopped")  # runs whose objective a search may use


class RunStopped(Exception):  # noqa: N818 (a way to end, not an error)
    """Raised from a loop hook to end a run cleanly before max_steps, with its status."""

    def __init__(self, status: str, reason: str):
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        super().__init__(reason)
        self.status = status
        self.reason = reason
