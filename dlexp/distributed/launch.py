"""The self-launching form, `dlexp-train distributed.nproc_per_node=N`: this process starts N ranks
on its machine through torch's elastic launch API, the agent torchrun runs (c10d rendezvous on
localhost, a free port, no restarts).

The agent watches the ranks. One that fails ends the others (SIGTERM, then SIGKILL after
SHUTDOWN_S), and the failure comes back as RankFailed, naming the first rank that failed and its
error's line. A signal to this process is passed on to the ranks (which stop after the same step
and checkpoint) and comes back as its number. Each rank dies with this process, even after a
SIGKILL (dlexp.distributed.process_group.die_with_parent).
"""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable
from contextlib import contextmanager

# The signals the agent passes on to the ranks (SIGUSR2: submitit's warning before a time-out).
SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR2")
SHUTDOWN_S = 60  # a rank's time to finish its step and checkpoint after a signal, then SIGKILL
MONITOR_S = 0.1  # how often the agent looks at the ranks
QUIET_LOGGERS = ("torch.distributed.elastic", "torch.multiprocessing")  # dlexp says it in a line
# A rank killed mid-run leaves a semaphore of the launcher's queues to multiprocessing's resource
# tracker, which removes it and warns at exit, after dlexp's own line about the run.
TRACKER_WARNING = "ignore:resource_tracker:UserWarning:multiprocessing.resource_tracker"


class RankFailed(Exception):  # noqa: N818 (the run's outcome, as RunStopped)
    """A rank of a self-launched run failed: `rank`, `reason` (its error in one line) and its
    traceback, when the rank raised."""

    def __init__(self, rank: int, reason: str, traceback: str = ""):
        super().__init__(f"rank {rank} failed: {reason}")
        self.rank, self.reason, self.traceback = rank, reason, traceback

    def __reduce__(self):
        return (RankFailed, (self.rank, self.reason, self.traceback))


def failure_traceback(failure) -> str:
    """The traceback torch's `record` wrote for a rank that raised; "" for one killed."""
    message = failure.message
    if not isinstance(message, dict):
        return ""
    return str(message.get("extraInfo", {}).get("py_callstack", ""))


def failure_reason(failure) -> str:
    """One line from torch's ProcessFailure: the rank's error as `record` wrote it (`ValueError:
    ...`), or the signal that killed it, or its exit status."""
    message = failure.message
    if isinstance(message, dict):
        message = message.get("message", "")
    line = next((x.strip() for x in str(message).splitlines() if x.strip()), "")
    if failure.exitcode < 0:
        return f"killed by {failure.signal_name()}"
    if line and not line.startswith("To enable traceback"):  # torch's text when none was written
        return line
    return f"exited with status {failure.exitcode}"


@contextmanager
def _agent_quiet_and_contained():
    """The agent logs its every step (each module's logger has its own level), and leaves its
    signal handlers in this process: both are put back as they were."""
    names = [n for n in logging.root.manager.loggerDict if n.startswith(QUIET_LOGGERS)]
    levels = {name: logging.getLogger(name).level for name in [*QUIET_LOGGERS, *names]}
    handlers = {s: signal.getsignal(getattr(signal, s)) for s in SIGNALS if hasattr(signal, s)}
    for name in levels:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for name, handler in handlers.items():
            signal.signal(getattr(signal, name), handler)


def stop_signal(exitcode: int) -> int | None:
    """The stop signal a rank's exit status says it stopped for (dlexp's ranks exit 128 + the
    signal after their checkpoint, as a single run's command does), else None."""
    names = {getattr(signal, name, None) for name in SIGNALS}
    return exitcode - 128 if exitcode > 128 and exitcode - 128 in names else None


def launch_ranks(entrypoint: Callable, args: tuple, nproc: int) -> int | None:
    """Run `entrypoint(*args)` in `nproc` new processes (spawned: a fresh interpreter each),
    which find their ranks in torchrun's variables. Returns None when they have finished, or the
    stop signal when one was sent to this process or to a rank; raises RankFailed."""
    from torch.distributed.elastic.multiprocessing import (  # the agent: launches only
        DefaultLogsSpecs,
        SignalException,
    )
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError  # (as above)
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch  # (as above)

    if TRACKER_WARNING not in sys.warnoptions:  # the tracker starts with this process's -W
        sys.warnoptions.append(TRACKER_WARNING)
    with tempfile.TemporaryDirectory(prefix="dlexp-ranks-") as logs:  # the ranks' error files
        config = LaunchConfig(
            min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
            rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
            monitor_interval=MONITOR_S, start_method="spawn",
            logs_specs=DefaultLogsSpecs(log_dir=logs), signals_to_handle=",".join(SIGNALS),
            shutdown_timeout=SHUTDOWN_S,
        )  # fmt: skip
        try:
            with _agent_quiet_and_contained():
                elastic_launch(config, entrypoint)(*args)
        except ChildFailedError as failed:
            rank, failure = failed.get_first_failure()
            stopped = stop_signal(failure.exitcode)
            if stopped is not None:  # a signal to a rank: every rank stopped after its step
                return stopped
            raise RankFailed(rank, failure_reason(failure), failure_traceback(failure)) from None
        except SignalException as signalled:
            return int(signalled.sigval)
    return None
