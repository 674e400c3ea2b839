"""Studies never mix budgets (dlexp.search.study_identity): a rerun with another budget starts
its own study or is refused in one line; a plumbing change continues the study; a study stored
before identities adopts one. Checked against Optuna's own storage, read back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution

from dlexp.search.study_identity import IDENTITY, differences, digest, study_identity
from dlexp.search.study_parts import open_storage
from tests.conftest import compose_train
from tests.runs import DLEXP_TRAIN

SPACE = "optim.lr=tag(log,interval(1e-3,1e-1))"


def identity(*overrides: str) -> dict:
    space = {"optim.lr": FloatDistribution(1e-3, 1e-1, log=True)}
    return study_identity(compose_train(["output_dir=/x", *overrides]), space)


def test_the_identity_drops_plumbing_and_searched_keys_and_keeps_the_budget():
    held = identity()
    assert "optim.lr" not in held["config"]  # searched
    assert "progress" not in held["config"] and "data.root" not in held["config"]  # plumbing
    assert held["config"]["max_steps"] == 1500 and "optim.lr" in held["space"]
    assert identity("progress=false", "data.root=/elsewhere", "optim.lr=0.5") == held
    assert identity("max_steps=200") != held
    assert differences(held, identity("max_steps=200")) == "max_steps=1500, not 200"
    assert digest(held) == digest(identity()) != digest(identity("max_steps=200"))
    assert len(digest(held)) == 8


def search(tiny_cifar: Path, cwd: Path, n_trials: int, *extra: str):
    command = [
        *DLEXP_TRAIN, "-m", "hydra/sweeper=dlexp_optuna", f"hydra.sweeper.n_trials={n_trials}",
        SPACE, f"data.root={tiny_cifar}", "data.validation_size=50", "batch_size=20",
        "eval_freq=2", "progress=false", *extra,
    ]  # fmt: skip
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def studies(journal: Path) -> dict[str, optuna.Study]:
    storage = open_storage(str(journal))
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, False)]
    return {name: optuna.load_study(study_name=name, storage=storage) for name in names}


@pytest.mark.slow  # ~20 s: four searches in subprocesses
def test_a_default_named_study_never_mixes_budgets(tiny_cifar, tmp_path):
    first = search(tiny_cifar, tmp_path, 1, "max_steps=4")
    assert first.returncode == 0, first.stderr[-2000:]
    journal = tmp_path / "outputs/numpy_mlp/optuna/numpy_mlp.journal"
    other = search(tiny_cifar, tmp_path, 1, "max_steps=2")
    assert other.returncode == 0, other.stderr[-2000:]
    found = studies(journal)
    (fresh,) = set(found) - {"numpy_mlp"}
    assert fresh == f"numpy_mlp-{digest(found[fresh].user_attrs[IDENTITY])}"
    line = f"study 'numpy_mlp' was run with max_steps=4, not 2: this search is study '{fresh}'"
    assert line in other.stdout + other.stderr
    assert [t.user_attrs["steps"] for t in found["numpy_mlp"].trials] == [4]
    assert [t.user_attrs["steps"] for t in found[fresh].trials] == [2]
    # a plumbing change (progress, data.root) continues the same study
    again = search(tiny_cifar, tmp_path, 2, "max_steps=4", "progress=true")
    assert again.returncode == 0, again.stderr[-2000:]
    assert [t.user_attrs["steps"] for t in studies(journal)["numpy_mlp"].trials] == [4, 4]


@pytest.mark.slow  # ~15 s: three searches in subprocesses
def test_a_named_study_refuses_another_budget_and_an_old_study_adopts_one(tiny_cifar, tmp_path):
    journal = tmp_path / "s.journal"
    named = [f"hydra.sweeper.storage={journal}", "hydra.sweeper.study_name=s"]
    old = optuna.create_study(storage=open_storage(str(journal)), study_name="s",
                              direction="maximize")  # fmt: skip
    assert IDENTITY not in old.user_attrs  # as stored by a dlexp before identities
    adopted = search(tiny_cifar, tmp_path, 1, "max_steps=4", *named)
    assert adopted.returncode == 0, adopted.stderr[-2000:]
    assert "study 's' has no recorded identity" in adopted.stdout + adopted.stderr
    held = studies(journal)["s"].user_attrs[IDENTITY]
    assert held["config"]["max_steps"] == 4
    refused = search(tiny_cifar, tmp_path, 2, "max_steps=2", *named)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "dlexp-train: error: study 's' was run with max_steps=4, not 2: a study keeps one "
        "budget and search space; rerun with its values, or pick another "
        "hydra.sweeper.study_name"
    ]
    assert len(studies(journal)["s"].trials) == 1  # nothing was added
