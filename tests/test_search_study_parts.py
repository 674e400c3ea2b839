"""The Optuna pieces on both kinds of storage: a journal file and an SQL URL, read back through
Optuna's own study API."""

from __future__ import annotations

import optuna
import pytest
from optuna.storages import JournalStorage, RDBStorage

from dlexp.search.study_parts import open_storage, storage_spec, trial_id


@pytest.fixture(params=["journal", "sqlite"])
def spec(request, tmp_path) -> str:
    if request.param == "journal":
        return storage_spec(str(tmp_path / "study.journal"))
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_open_storage_gives_the_storage_of_each_kind(spec):
    storage = open_storage(spec)
    assert isinstance(storage, RDBStorage if "://" in spec else JournalStorage)


def test_trial_id_finds_each_trial_by_number_through_the_public_storage_api(spec):
    storage = open_storage(spec)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    asked = [study.ask() for _ in range(3)]
    study.tell(asked[1], 0.5)
    for trial in asked:  # the id a Trial of that number carries (Optuna's own reference)
        assert trial_id(storage, "s", trial.number) == trial._trial_id
    again = optuna.load_study(study_name="s", storage=open_storage(spec))  # another process's view
    assert [t.number for t in again.get_trials()] == [0, 1, 2]
    assert again.get_trials()[1].value == 0.5
    with pytest.raises(KeyError):
        trial_id(storage, "no such study", 0)
