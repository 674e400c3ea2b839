"""The Optuna sweeper: ask a batch of trials, launch them as Hydra jobs, read each job's
metrics.json, tell the study; until the study holds `n_trials` trials (docs/search.md).

The study lives in Optuna storage (a journal file by default), so rerunning the command continues
it and several processes sharing the storage cooperate on it; each job reaches its trial through
the same storage to report evaluations and be pruned (dlexp.search.trial_report).
"""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dlexp.errors import ConfigError, one_line, user_errors
from dlexp.overrides import configures_hydra, override_key
from dlexp.search.grid_sweeper import try_compose
from dlexp.search.pool_trials import run_on_pool
from dlexp.search.search_checks import check_space, check_space_fits, study_direction
from dlexp.search.search_space import SearchSpace, override_text, parse_space, suggest
from dlexp.search.study_identity import choose_study_name, record_identity, study_identity
from dlexp.search.study_outputs import shown, write_study_outputs
from dlexp.search.study_parts import (
    make_pruner,
    make_sampler,
    open_storage,
    shown_storage,
    storage_spec,
    trial_id,
)
from dlexp.search.sweep_resume import (
    STOPPED,
    ask_again,
    counted_trials,
    job_folders,
    requeue_stopped_trials,
)
from dlexp.search.trial_heartbeats import heartbeat_options
from dlexp.search.trial_outcome import Outcome, read_outcome
from dlexp.search.worker_pool import uses_pool

log = logging.getLogger(__name__)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


class OptunaSweeper(Sweeper):
    """`hydra/sweeper=dlexp_optuna` (conf/hydra/sweeper/dlexp_optuna.yaml lists its keys)."""

    def __init__(self, n_trials, n_jobs, direction, storage, study_name, sampler, pruner, params,
                 max_retries=1, devices=None, slots_per_device=1, heartbeat_interval=60,
                 grace_period=None):  # fmt: skip
        self.n_trials, self.n_jobs, self.direction = n_trials, n_jobs, direction
        self.pool_keys = {  # dlexp's worker pool (dlexp.search.worker_pool)
            "n_jobs": n_jobs,
            "max_retries": max_retries,
            "devices": list(devices or []),
            "slots_per_device": slots_per_device,
        }
        self.storage = storage
        self.study_name = study_name
        self.heartbeat = (heartbeat_interval, grace_period, max_retries)  # SQL storages only
        self.sampler = (
            OmegaConf.to_container(sampler) if isinstance(sampler, DictConfig) else dict(sampler)
        )
        self.pruner = (
            OmegaConf.to_container(pruner) if isinstance(pruner, DictConfig) else dict(pruner)
        )
        self.params = {str(k): v for k, v in (params or {}).items()}
        self.hydra_context = self.config = self.launcher = self.task_function = None
        self.optuna_storage = None  # the study's Optuna storage, once opened

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.task_function = task_function
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _check_keys(self) -> None:
        """Here rather than in __init__, where Hydra would wrap the error in its own."""
        if self.n_trials < 1 or self.n_jobs < 1:
            raise ConfigError(
                f"hydra.sweeper.n_trials and n_jobs must be >= 1, "
                f"got {self.n_trials}, {self.n_jobs}"
            )
        if not self.storage or not self.study_name:
            raise ConfigError(
                "hydra.sweeper.storage (a journal file or an Optuna storage URL) and "
                "hydra.sweeper.study_name must be set"
            )
        if self.direction not in (None, "maximize", "minimize"):
            raise ConfigError(
                f"hydra.sweeper.direction must be maximize, minimize or null, got {self.direction}"
            )

    def _compose(self, overrides: list[str], context: str = "search") -> DictConfig:
        """The job config of these overrides; ConfigError (one line) if it cannot compose."""
        cfg, reason = try_compose(self.hydra_context.config_loader, self.config, overrides)
        if reason:
            raise ConfigError(f"{context}: {reason}; nothing was run")
        return cfg

    def _compose_outside_search(self, overrides: list[str]) -> DictConfig:
        """As _compose, without the command line's hydra.sweeper overrides, which a config
        without hparams_search (whose sweeper is Hydra's basic one) would refuse."""
        kept = [o for o in self.config.hydra.overrides.hydra if not configures_hydra(o, "sweeper")]
        try:
            return self.hydra_context.config_loader.load_configuration(
                self.config.hydra.job.config_name, [*kept, *overrides], RunMode.RUN
            )
        except user_errors() as err:
            raise ConfigError(one_line(err)) from None

    def _named_by_user(self) -> bool:
        """Whether the command line names the study (a preset's or the default name does not)."""
        overrides = [*self.config.hydra.overrides.hydra, *self.config.hydra.overrides.task]
        return any(override_key(o) == "hydra.sweeper.study_name" for o in overrides)

    def _open_study(self, direction: str, metric: str, identity: dict):
        import optuna  # not at import: Hydra imports this module on every run, search or not

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.storage_spec = storage_spec(self.storage)
        heartbeat = heartbeat_options(self.storage_spec, *self.heartbeat)
        self.optuna_storage = open_storage(self.storage_spec, heartbeat)
        self.study_name = choose_study_name(
            self.optuna_storage, self.study_name, identity, self._named_by_user()
        )
        study = optuna.create_study(
            storage=self.optuna_storage,
            study_name=self.study_name,
            direction=direction,
            pruner=make_pruner(self.pruner),
            load_if_exists=True,
        )
        their_metric = study.user_attrs.get("optimized_metric")
        if their_metric is None:
            study.set_user_attr("optimized_metric", metric)
            their_metric = metric
        if study.direction.name.lower() != direction or their_metric != metric:
            raise ConfigError(
                f"study {self.study_name!r} in {shown_storage(self.storage_spec)} "
                f"{study.direction.name.lower()}s {their_metric}, not {metric}; "
                f"pick another hydra.sweeper.study_name"
            )
        record_identity(study, identity)
        return study

    def sweep(self, arguments: list[str]) -> list:
        self._check_keys()
        space = parse_space(self.params, arguments)
        base = self._compose(space.fixed)
        metric = base.optimized_metric
        direction = study_direction(metric, self.direction)
        check_space(self.hydra_context.config_loader, self.config, space)
        study = self._open_study(direction, metric, study_identity(base, space.distributions))
        check_space_fits(study, space, self.study_name)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        requeued = requeue_stopped_trials(study, self.optuna_storage)
        if requeued:
            log.info("trials %s stopped with their sweep: asked again with the same parameters",
                     ", ".join(map(str, requeued)))  # fmt: skip
        self._first_job_number = max(job_folders(sweep_dir), default=-1) + 1  # a resume goes on
        held = counted_trials(study)
        log.info(
            "study %r (%s %s) in %s: %d trials held, n_trials=%d",
            self.study_name, direction, metric, shown_storage(self.storage_spec), held,
            self.n_trials,
        )  # fmt: skip
        if held >= self.n_trials:
            log.info("the study is full: raise hydra.sweeper.n_trials to run more trials")
        if uses_pool(self.config):
            returns = run_on_pool(self, study, space, metric, sweep_dir)
        else:
            returns = self._run_trials(study, space, metric)
        self._write_outputs(study, space, metric, sweep_dir)
        return returns

    def _ask(self, study, pending: list, space: SearchSpace):
        """A new trial (added to `pending` at once), sampled with a seed of its own number, its
        job's overrides (kept on the trial, without the search.* plumbing, for best.yaml), and
        the trial as stored (a retry's attributes: whose retry it is, where that one ran)."""
        import optuna  # (as _open_study)

        number = study.ask().number
        study.sampler = make_sampler(self.sampler, number)
        # A Trial built anew samples with the new seed from its first step (before_trial).
        stored_id = trial_id(self.optuna_storage, self.study_name, number)
        trial = optuna.trial.Trial(study, stored_id)
        pending.append(trial)
        trial.set_user_attr("pruner", self.pruner)
        for key, distribution in space.distributions.items():
            suggest(trial, key, distribution)
        overrides = self._job_overrides(trial, space)
        trial.set_user_attr("overrides", [o for o in overrides if not o.startswith("search.")])
        return trial, overrides, self.optuna_storage.get_trial(stored_id)

    def _job_overrides(self, trial, space: SearchSpace) -> list[str]:
        params = [override_text(k, v) for k, v in trial.params.items()]
        search = [
            f"search.storage={_quoted(self.storage_spec)}",
            f"search.study_name={_quoted(self.study_name)}",
            f"search.trial={trial.number}",
        ]
        return [*space.fixed, *params, *search]

    def _next_batch_size(self, study) -> int:
        """Trials to ask now: the study, counting every process's trials in any state (running
        ones included), stops at n_trials."""
        return min(self.n_jobs, self.n_trials - counted_trials(study))

    def _run_trials(self, study, space: SearchSpace, metric: str) -> list:
        returns, pending, job_idx = [], [], self._first_job_number
        try:
            while (batch := self._next_batch_size(study)) > 0:
                overrides = [self._ask(study, pending, space)[1] for _ in range(batch)]
                results = self.launcher.launch(overrides, initial_job_idx=job_idx)
                job_idx += len(results)
                for trial, ret in zip(list(pending), results, strict=True):
                    self._tell(study, trial, read_outcome(ret), metric)
                    pending.remove(trial)
                returns.append(results)
        finally:  # an interrupted batch: its trials must not stay RUNNING forever
            self._fail_pending(study, pending)
        return returns

    def _fail_pending(self, study, pending: list) -> None:
        from optuna.trial import TrialState  # (as _open_study)

        for trial in pending:  # stopped after a checkpoint: asked again at once, so that any
            trial.set_user_attr("reason", STOPPED)  # worker of the study may resume it
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            ask_again(study, trial)

    def _tell(self, study, trial, outcome: Outcome, metric: str) -> None:
        from optuna.trial import TrialState  # (as _open_study)

        for key in ("job_dir", "status", "reason", "steps"):
            trial.set_user_attr(key, getattr(outcome, key))
        if outcome.state == "complete":
            study.tell(trial.number, outcome.value)
        else:
            state = TrialState.PRUNED if outcome.state == "pruned" else TrialState.FAIL
            study.tell(trial.number, state=state)
        params = shown(trial.params)
        result = f"{metric} {outcome.value:.4f}" if outcome.value is not None else outcome.reason
        log.info(
            "trial %d %s: %s | %s | %s steps",
            trial.number, outcome.state, result, params, outcome.steps,
        )  # fmt: skip

    def _write_outputs(self, study, space: SearchSpace, metric: str, sweep_dir: Path) -> None:
        fallback = space.fixed  # a trial from before "overrides" was kept: its params added
        write_study_outputs(
            study, metric, sweep_dir, fallback, self._compose_outside_search,
            (self.study_name, shown_storage(self.storage_spec)),
        )  # fmt: skip
