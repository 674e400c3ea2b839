"""The job's side of a search: report each evaluation to the study's trial, stop when it is pruned.

The sweeper passes each job `search.storage`, `search.study_name` and `search.trial`; the trial's
pruner settings travel in the trial's user attributes, so a job needs nothing else.
"""

from __future__ import annotations

import math

from omegaconf import DictConfig

from dlexp.errors import ConfigError
from dlexp.run.record import RunStopped
from dlexp.search.study_parts import make_pruner, open_storage, trial_id


class TrialReport:
    """Called after every evaluation: `report(step, {"val/accuracy": 0.41, ...})`."""

    @classmethod
    def from_config(cls, search: DictConfig, optimized_metric: str) -> TrialReport | None:
        """From the config's `search` node; None outside a search (search.trial is null)."""
        if search.trial is None:
            return None
        if not search.storage or not search.study_name:
            raise ConfigError("search.trial needs search.storage and search.study_name")
        return cls(search.storage, search.study_name, int(search.trial), optimized_metric)

    def __init__(self, storage: str, study_name: str, number: int, metric: str):
        import optuna  # Optuna: only in a search's trials, never in a plain run
        from optuna.trial import TrialState  # (as above)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            store = open_storage(storage)
            study = optuna.load_study(study_name=study_name, storage=store)
            self._id = trial_id(store, study_name, number)
        except (KeyError, ValueError) as err:
            raise ConfigError(
                f"search.trial={number}: no such trial in study {study_name!r} at {storage} "
                f"({err}); drop the search.* overrides to run alone"
            ) from None
        frozen = store.get_trial(self._id)
        if frozen.state != TrialState.RUNNING:
            raise ConfigError(
                f"search.trial={number}: trial {number} of study {study_name!r} is "
                f"{frozen.state.name.lower()}, not running; drop the search.* overrides "
                f"to run alone"
            )
        self.pruner_name = frozen.user_attrs.get("pruner", {}).get("name", "none")
        study.pruner = make_pruner(frozen.user_attrs.get("pruner", {"name": "none"}))
        self.trial = optuna.trial.Trial(study, self._id)
        self.number = number
        self.metric = metric
        # A resumed job evaluates again the steps after its checkpoint that its trial (or the
        # trial it retries) holds already: those are not reported twice.
        self._reported = set(frozen.intermediate_values)

    def __call__(self, step: int, evaluated: dict[str, float]) -> None:
        """Report the optimized metric at `step`; RunStopped("pruned") if the pruner says so."""
        value = evaluated.get(self.metric)
        if value is None or not math.isfinite(value) or step in self._reported:
            return
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            raise RunStopped(
                "pruned",
                f"pruned at step {step}: {self.metric} {value:.4g} (the {self.pruner_name} "
                f"pruner, trial {self.number})",
            )
