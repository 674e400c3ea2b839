"""Heartbeats on SQL storages: a search's workers keep their running trials alive, and a trial
whose worker stopped beating (killed, or its machine died) is failed and asked again with the
same parameters, up to `max_retries` times (docs/search.md, "Several machines, one study").

This is Optuna's own mechanism: RDBStorage's heartbeat table, `fail_stale_trials` and
`RetryHeartbeatStaleTrialCallback` (the retry keeps the dead trial's evaluations, so its curve
and the pruner's view go on). Optuna's journal storage has no heartbeats: there, the pool's
retry of a job whose process died, and a resume's check of RUNNING trials, are the recovery.

The worker beats from its own loop (WorkerPool's tick), not from a thread, so that no database
connection is in use while it forks a job.
"""

from __future__ import annotations

import logging
import time
import warnings

from dlexp.errors import ConfigError
from dlexp.search.study_parts import trial_id

log = logging.getLogger(__name__)


def heartbeat_options(storage_spec: str, interval_s: int | None, grace_s: int | None, retries: int):
    """RDBStorage's heartbeat keywords for a SQL storage (empty for a journal file, which has
    none); `retries`: how many times a trial that lost its worker is asked again."""
    if interval_s is not None and interval_s < 1:
        raise ConfigError(f"hydra.sweeper.heartbeat_interval must be >= 1 s, got {interval_s}")
    if grace_s is not None and interval_s is not None and grace_s <= interval_s:
        raise ConfigError(
            f"hydra.sweeper.grace_period ({grace_s} s) must be longer than "
            f"heartbeat_interval ({interval_s} s)"
        )
    if "://" not in storage_spec or interval_s is None:
        return {}
    # Optuna marks these keywords experimental, and warns that its heartbeats are meant for
    # Study.optimize: dlexp's workers ask and tell, and beat from their own loop.
    warnings.filterwarnings("ignore", message=".*heartbeat", category=optuna_warning())
    warnings.filterwarnings("ignore", message="RetryHeartbeatStaleTrialCallback is experimental")
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    return {
        "heartbeat_interval": interval_s,
        "grace_period": grace_s,  # None: Optuna's, twice the interval
        "heartbeat_stale_trial_callback": _retry_stale_trial(retries),
    }


def optuna_warning():
    from optuna.exceptions import ExperimentalWarning  # Optuna: only once a search starts

    return ExperimentalWarning


def _retry_stale_trial(retries: int):
    """What Optuna calls for each trial it failed for want of heartbeats: ask it again."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback  # Optuna: in a search only

    retry = RetryHeartbeatStaleTrialCallback(max_retry=retries, inherit_intermediate_values=True)

    def on_stale(study, trial) -> None:
        before = {t.number for t in study.get_trials(deepcopy=False)}
        retry(study, trial)
        added = sorted({t.number for t in study.get_trials(deepcopy=False)} - before)
        again = f"asked again as trial {added[0]}" if added else f"not retried ({retries} retries)"
        log.warning("trial %d: its worker stopped sending heartbeats; failed, %s",
                    trial.number, again)  # fmt: skip

    return on_stale


class TrialHeartbeats:
    """A worker's heartbeats: `tick(running)` beats for the worker's running trials and fails the
    study's stale ones, once per heartbeat interval."""

    def __init__(self, study, storage):
        self.study, self.storage = study, storage
        self.interval = storage.get_heartbeat_interval()
        self._ids: dict[int, int] = {}
        self._last = float("-inf")

    @classmethod
    def of(cls, study, storage) -> TrialHeartbeats | None:
        """The heartbeats of a storage that has them enabled; None for any other."""
        interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
        return cls(study, storage) if interval is not None else None

    def beat(self, number: int) -> None:
        """One heartbeat for trial `number` (the first, as its job starts, makes it stale-able)."""
        if number not in self._ids:
            self._ids[number] = trial_id(self.storage, self.study.study_name, number)
        self.storage.record_heartbeat(self._ids[number])

    def tick(self, running: list[int]) -> bool:
        """Beat and fail stale trials when an interval has passed; returns whether the study has
        trials of other workers that are running or waiting, which this worker may yet have to
        run (a worker with nothing left stays while they may fail)."""
        from optuna.storages import fail_stale_trials  # Optuna: only once a search starts
        from optuna.trial import TrialState  # (as above)

        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            for number in running:
                self.beat(number)
            fail_stale_trials(self.study)
        states = (TrialState.RUNNING, TrialState.WAITING)
        others = self.study.get_trials(deepcopy=False, states=states)
        return any(t.number not in running for t in others)
