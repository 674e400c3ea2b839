"""Stop requests from signals: Ctrl-C, SIGTERM (kill, schedulers) and SIGUSR2 (submitit, before a
timeout or preemption). The first one asks the loop to finish its step, checkpoint and stop; a
second one aborts at once.

Handlers are installed explicitly: a process started in the background by a script inherits
SIGINT as ignored, and Python then never raises KeyboardInterrupt.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR2") if hasattr(signal, name)
)


class StopRequests:
    """A context manager that turns the first stop signal into a flag the loop polls."""

    def __init__(self):
        self.signal: int | None = None  # the first signal received
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def signal_name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else ""

    def exit_status(self) -> int:
        return 128 + (self.signal or 0)  # the shell's convention: 130 for SIGINT, 143 for SIGTERM

    def previous_handler(self):
        """A Python handler that was installed before for SIGUSR2: submitit's, which requeues
        the job. (SIGINT's previous handler is Python's own, raising KeyboardInterrupt.)"""
        usr2 = getattr(signal, "SIGUSR2", None)
        handler = self._previous.get(self.signal) if self.signal == usr2 else None
        return handler if callable(handler) else None

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:  # the second signal: abort now, no checkpoint
            self._restore()
            raise RunAborted(signum)
        self.signal = signum

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # Python's own rule
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def __exit__(self, *exc) -> None:
        self._restore()


class RunInterrupted(BaseException):
    """Raised by train() after a stop signal, once the checkpoint and metrics.json are written.

    A BaseException, as KeyboardInterrupt is: it is no failure, and ends a sweep as well. Plain
    fields only, so that it pickles back from a joblib worker.
    """

    def __init__(self, message: str, signum: int):
        super().__init__(message, signum)
        self.message, self.signal = message, signum
        self.exit_status = 128 + signum  # the shell's convention: 130 SIGINT, 143 SIGTERM
        self.previous_handler = None  # set in the job's own process: submitit's SIGUSR2 handler

    def __reduce__(self):
        return (RunInterrupted, (self.message, self.signal))


def stopped_run(run_dir: Path, status: str, reason: str, signum: int, handler=None):
    """The RunInterrupted a stopped run ends with: the line that says how to resume it, and its
    exit status (128 + the signal). `handler` is the one installed before dlexp's for SIGUSR2
    (submitit's, which requeues), if any."""
    if status == "interrupted":
        message = f"{reason}; resume with: dlexp-train resume={run_dir}"
    else:  # the signal came during the last step, which completed the run
        message = f"{signal.Signals(signum).name} received after the last step: the run is {status}"
    stopped = RunInterrupted(message, signum)
    stopped.previous_handler = handler
    return stopped


class RunAborted(KeyboardInterrupt):
    """A second stop signal: the run ends at once, without a checkpoint of its current step."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signal = signum
        self.exit_status = 128 + signum

    def __str__(self) -> str:
        return f"aborted by a second {signal.Signals(self.signal).name}"
