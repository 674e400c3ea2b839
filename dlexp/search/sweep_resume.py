"""`dlexp-train resume=<sweep folder>` finishes a sweep that was interrupted or killed: its
finished jobs are kept, interrupted and killed ones resume from their checkpoints in their own
folders, never-started ones run (docs/sweeps.md, "Resuming a sweep").

The command is rebuilt from the sweep's multirun.yaml (its overrides, into the same folder); the
sweepers then skip the jobs whose metrics.json says they finished.
"""

from __future__ import annotations

import socket
import warnings
from pathlib import Path

from omegaconf import OmegaConf

from dlexp.errors import ConfigError
from dlexp.overrides import override_key
from dlexp.run.environment import read_environment, still_running
from dlexp.run.folder import job_number
from dlexp.run.record import read_job_record
from dlexp.search.study_parts import trial_id

FINISHED = ("completed", "early_stopped", "pruned", "failed")  # kept as they are by a resume


def sweep_folder(args: list[str]) -> Path | None:
    """The folder of `resume=<folder>` when it is a sweep's (it holds multirun.yaml)."""
    for arg in args:
        if arg.startswith("resume="):
            folder = Path(arg.split("=", 1)[1]).expanduser()
            return folder if (folder / "multirun.yaml").is_file() else None
    return None


def resumed_sweep_args(args: list[str]) -> list[str]:
    """The command line that finishes the sweep named by `resume=`: its own overrides, into its
    own folder. Anything else on the command line would make another sweep: refused."""
    folder = sweep_folder(args)
    if folder is None:
        return args
    others = [a for a in args if not a.startswith("resume=") and a not in ("-m", "--multirun")]
    if others:
        raise ConfigError(
            f"resume={folder} finishes that sweep as it was started; drop {' '.join(others)}"
        )
    saved = OmegaConf.load(folder / "multirun.yaml").hydra.overrides
    replaced = ("hydra.sweep.dir", "hydra.mode")
    kept = [o for o in saved.hydra if override_key(o) not in replaced]
    return ["-m", *saved.task, *kept, f"hydra.sweep.dir={folder.absolute()}"]


def job_folders(sweep_dir: Path) -> dict[int, Path]:
    """{job number: its folder} of the jobs a sweep folder holds."""
    if not sweep_dir.is_dir():
        return {}
    found = {}
    for path in sweep_dir.iterdir():
        number = job_number(path)
        if number is not None and path.is_dir():
            found[number] = path
    return found


def finished_jobs(sweep_dir: Path) -> set[int]:
    """The jobs whose metrics.json says they finished: a resume keeps them."""
    return {
        number
        for number, folder in job_folders(sweep_dir).items()
        if (folder / "metrics.json").is_file() and read_job_record(folder)["status"] in FINISHED
    }


def died_here(folder: Path | None) -> bool:
    """Whether a job's process ran on this machine and is gone (its environment.json says where
    it ran): a trial still RUNNING in the storage whose sweep was killed."""
    if folder is None:
        return False
    record = read_environment(folder)
    return record.get("host") == socket.gethostname() and still_running(folder) is None


def retry_origin(trial) -> int | None:
    """The trial this one retries: the last of Optuna's retry history (a trial its worker's
    heartbeat lost), or a resume's `retry_of`; None for a first try."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback  # Optuna: in a search only

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks retry_history experimental
        history = RetryHeartbeatStaleTrialCallback.retry_history(trial)
    return history[-1] if history else trial.user_attrs.get("retry_of")


def _retried(trials) -> set[int]:
    """The numbers of trials that were asked again (their retries name them)."""
    return {n for n in map(retry_origin, trials) if n is not None}


def counted_trials(study, below: int | None = None) -> int:
    """The study's trials towards n_trials, in any state and from any process, except those
    asked again (their retry counts instead) and surplus ones; with `below`, only those
    numbered below it."""
    trials = study.get_trials(deepcopy=False)
    retried = _retried(trials)
    return sum(
        1
        for t in trials
        if t.number not in retried
        and not t.user_attrs.get("surplus")
        and (below is None or t.number < below)
    )


STOPPED = "the sweep stopped before the trial finished"  # the reason a stopped sweep gives


def ask_again(study, trial) -> None:
    """Enqueue `trial` (failed) again: its parameters, and where it ran, so that its retry runs
    in its folder from its checkpoint when the worker that takes it can reach that folder."""
    where = {k: trial.user_attrs[k] for k in ("sweep_dir", "job") if k in trial.user_attrs}
    study.enqueue_trial(trial.params, user_attrs={**where, "retry_of": trial.number})


def requeue_stopped_trials(study, storage) -> list[int]:
    """Before a search goes on: a trial still RUNNING whose process died on this machine (its
    sweep was killed), and one its stopped sweep failed, are failed and asked again with the
    same parameters (Optuna's enqueue_trial). Returns their numbers."""
    from optuna.trial import TrialState  # Optuna: only once a search starts

    requeued = []
    trials = study.get_trials(deepcopy=False)
    retried = _retried(trials)
    for trial in trials:
        if trial.number in retried:
            continue
        stopped = trial.state == TrialState.FAIL and trial.user_attrs.get("reason") == STOPPED
        folders = job_folders(Path(trial.user_attrs.get("sweep_dir", "")))
        killed = trial.state == TrialState.RUNNING and died_here(
            folders.get(trial.user_attrs.get("job", -1))
        )
        if not (stopped or killed):
            continue
        if killed:  # (a finished trial takes no new attribute: its retry says retry_of)
            number = trial_id(storage, study.study_name, trial.number)
            storage.set_trial_user_attr(number, "reason", "its process died with its sweep")
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        ask_again(study, trial)
        requeued.append(trial.number)
    return requeued
