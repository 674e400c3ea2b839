"""A trial's report to its Optuna study (dlexp.search.trial_report): each evaluation, pruning."""

from __future__ import annotations

import math

import optuna
import pytest
from omegaconf import OmegaConf

from dlexp.errors import ConfigError
from dlexp.run.record import RunStopped
from dlexp.search.study_parts import open_storage
from dlexp.search.trial_report import TrialReport


def test_trial_report_reports_each_evaluation_and_prunes(tmp_path):
    storage = str(tmp_path / "s.journal")
    study = optuna.create_study(study_name="s", storage=open_storage(storage), direction="maximize")
    done = study.ask()
    for step, value in ((2, 0.8), (4, 0.9)):
        done.report(value, step)
    study.tell(done, 0.9)
    running = study.ask()
    running.set_user_attr("pruner", {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0})
    search = OmegaConf.create({"storage": storage, "study_name": "s", "trial": running.number})
    report = TrialReport.from_config(search, "val/accuracy")
    report(2, {"val/accuracy": 0.85, "test/accuracy": 0.1})  # above the median: goes on
    with pytest.raises(RunStopped) as stop:
        report(4, {"val/accuracy": 0.2, "val/loss": math.nan})
    assert stop.value.status == "pruned"
    assert stop.value.reason == "pruned at step 4: val/accuracy 0.2 (the median pruner, trial 1)"
    assert study.trials[1].intermediate_values == {2: 0.85, 4: 0.2}
    assert TrialReport.from_config(OmegaConf.create({"trial": None}), "val/accuracy") is None
    search.trial = done.number
    with pytest.raises(ConfigError, match="trial 0 of study 's' is complete, not running"):
        TrialReport.from_config(search, "val/accuracy")
