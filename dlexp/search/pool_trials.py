"""A search's trials on dlexp's worker pool: a trial is asked for the moment a slot is free, and
the search stops once the study, counting every worker's trials, holds `n_trials`.

Several workers (processes, machines, SLURM tasks) may share the study's storage:
- a trial asked when the study was already full (two workers took the last place at once) is
  surplus: it is failed before it runs, marked `surplus`, and does not count;
- a trial that retries another (a resume's, or Optuna's after a lost heartbeat) runs in the
  other's job folder when this worker can reach it (a shared file system), resuming from its
  last checkpoint; otherwise it starts afresh in this worker's sweep folder;
- on SQL storages the worker beats for its running trials and, with nothing left to run, stays
  while other workers' trials run, since they may fail and need a retry (trial_heartbeats).
"""

from __future__ import annotations

import logging
from pathlib import Path

from dlexp.search.sweep_resume import counted_trials, job_folders, retry_origin
from dlexp.search.trial_heartbeats import TrialHeartbeats
from dlexp.search.trial_outcome import read_outcome
from dlexp.search.worker_pool import Finished, Job, WorkerPool

log = logging.getLogger(__name__)

SURPLUS = "surplus: the study was full when it was asked (another worker took the last place)"


def _waiting(study) -> bool:
    from optuna.trial import TrialState  # Optuna: only once a search starts

    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _earlier_folder(frozen) -> Path | None:
    """The job folder of the trial that `frozen` retries, when this machine can reach it."""
    attrs = frozen.user_attrs
    if retry_origin(frozen) is None or "sweep_dir" not in attrs or "job" not in attrs:
        return None
    return job_folders(Path(attrs["sweep_dir"])).get(attrs["job"])


def run_on_pool(sweeper, study, space, metric: str, sweep_dir: Path) -> list:
    """Run the search's trials on dlexp's worker pool; returns [the jobs' JobReturns]."""
    from optuna.trial import TrialState  # (as _waiting)

    pool = WorkerPool(sweeper.hydra_context, sweeper.task_function, sweeper.config,
                      **sweeper.pool_keys)  # fmt: skip
    heartbeats = TrialHeartbeats.of(study, sweeper.optuna_storage)
    pending, returns = [], []

    def next_job() -> Job | None:
        if counted_trials(study) >= sweeper.n_trials and not _waiting(study):
            return None  # any state, any process; a waiting retry is within the budget
        trial, overrides, frozen = sweeper._ask(study, pending, space)
        if counted_trials(study, below=trial.number) >= sweeper.n_trials:
            trial.set_user_attr("surplus", True)
            trial.set_user_attr("reason", SURPLUS)
            study.tell(trial.number, state=TrialState.FAIL)
            pending.remove(trial)
            return None
        origin, folder = retry_origin(frozen), _earlier_folder(frozen)
        if origin is not None:
            trial.set_user_attr("retry_of", origin)
        if folder is not None:
            number = frozen.user_attrs["job"]
            log.info("trial %d retries trial %d in its folder, from its last checkpoint: %s",
                     trial.number, origin, folder)  # fmt: skip
        else:
            number = trial.number  # a job's folder is named after its trial
            trial.set_user_attr("sweep_dir", str(sweep_dir.absolute()))  # a resume finds it
            trial.set_user_attr("job", number)
        if heartbeats is not None:
            heartbeats.beat(trial.number)
        return Job(number, overrides, handle=trial, folder=folder)

    def on_finished(done: Finished) -> None:
        trial = done.job.handle
        if done.job.attempt:
            trial.set_user_attr("retries", done.job.attempt)
        sweeper._tell(study, trial, read_outcome(done.ret), metric)
        pending.remove(trial)
        returns.append(done.ret)

    def tick(running: list[Job]) -> bool:
        return heartbeats.tick([job.handle.number for job in running])

    try:
        pool.run(next_job, on_finished, tick if heartbeats is not None else None)
    finally:  # an interrupted sweep: its trials must not stay RUNNING forever
        sweeper._fail_pending(study, pending)
        idle = pool.write_times(sweep_dir)
        log.info("%d slots, idle %.1f%% of the time until the last trial started",
                 pool.n_jobs, 100 * idle)  # fmt: skip
    return [returns]
