"""Heartbeats and retries on a SQL storage (SQLite here; PostgreSQL in test_search_postgres),
read back from Optuna's own storage: a trial whose worker stopped beating is failed and asked
again with its parameters, its evaluations and its folder; the study's count stays the same."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState

from dlexp.errors import ConfigError
from dlexp.search.study_outputs import trial_rows
from dlexp.search.study_parts import open_storage
from dlexp.search.sweep_resume import counted_trials, retry_origin
from dlexp.search.trial_heartbeats import TrialHeartbeats, heartbeat_options


def sqlite_study(tmp_path, interval=1, grace=2, retries=1):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = open_storage(url, heartbeat_options(url, interval, grace, retries))
    return optuna.create_study(storage=storage, study_name="s"), storage


def started(study, heartbeats, x: float) -> int:
    """A trial as a worker starts it: its parameter, its folder, one evaluation, one beat."""
    study.enqueue_trial({"x": x})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.set_user_attr("sweep_dir", "/shared/sweep")
    trial.set_user_attr("job", trial.number)
    trial.report(0.5, 10)
    heartbeats.beat(trial.number)
    return trial.number


def test_a_trial_whose_worker_stopped_beating_is_failed_and_asked_again(tmp_path):
    study, storage = sqlite_study(tmp_path)
    heartbeats = TrialHeartbeats.of(study, storage)
    alive, dead = started(study, heartbeats, 0.1), started(study, heartbeats, 0.7)
    assert heartbeats.tick([alive, dead]) is False  # both are this worker's: nothing else
    deadline = time.monotonic() + 10
    while study.trials[dead].state == TrialState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
        heartbeats.tick([alive])  # the worker of `dead` no longer beats for it
    trials = study.get_trials()
    assert trials[alive].state == TrialState.RUNNING  # it kept beating
    assert trials[dead].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.state == TrialState.WAITING]
    assert retry_origin(retry) == dead
    assert retry.params == trials[dead].params == {"x": 0.7}
    assert retry.intermediate_values == {10: 0.5}  # its curve and the pruner's view go on
    assert (retry.user_attrs["sweep_dir"], retry.user_attrs["job"]) == ("/shared/sweep", dead)
    assert counted_trials(study) == 2  # the retry takes the dead trial's place
    assert heartbeats.tick([alive]) is True  # a waiting trial: the worker stays for it
    rows = {row["number"]: row for row in trial_rows(study, tmp_path)}
    assert rows[dead]["reason"] == f"asked again as trial {retry.number}"
    assert rows[retry.number]["retry_of"] == dead


def test_a_trial_is_retried_at_most_max_retries_times(tmp_path):
    study, storage = sqlite_study(tmp_path, retries=0)
    heartbeats = TrialHeartbeats.of(study, storage)
    started(study, heartbeats, 0.3)
    deadline = time.monotonic() + 10
    while study.trials[0].state == TrialState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
        heartbeats.tick([])
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]  # no retry


def test_a_journal_has_no_heartbeats_and_bad_keys_are_one_line(tmp_path):
    journal = str(tmp_path / "s.journal")
    assert heartbeat_options(journal, 60, None, 1) == {}
    study = optuna.create_study(storage=open_storage(journal), study_name="s")
    assert TrialHeartbeats.of(study, open_storage(journal)) is None
    with pytest.raises(ConfigError, match="heartbeat_interval must be >= 1 s, got 0"):
        heartbeat_options("sqlite:///x.db", 0, None, 1)
    with pytest.raises(ConfigError, match=r"grace_period \(5 s\) must be longer than"):
        heartbeat_options("sqlite:///x.db", 10, 5, 1)


def test_a_storage_that_cannot_open_is_one_line_without_its_password(tmp_path):
    url = "postgresql://me:secret@127.0.0.1:1/nothing"
    with pytest.raises(ConfigError) as err:
        open_storage(url)
    assert "secret" not in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(("cannot open storage postgresql://me:***@", "storage "))


def test_a_missing_database_driver_is_one_line_with_what_to_install():
    with pytest.raises(ConfigError) as err:
        open_storage("mysql://me:secret@127.0.0.1/nothing")  # no MySQL driver here
    assert str(err.value) == "storage mysql://me:***@127.0.0.1/nothing needs its database driver"
