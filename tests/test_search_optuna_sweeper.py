"""dlexp's Optuna sweeper, checked against Optuna's own storage read back and each job's
metrics.json: telling, resuming, two cooperating processes, pruning, failures, direction."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from optuna.trial import TrialState

from dlexp.config import register_config
from dlexp.errors import ConfigError
from dlexp.overrides import is_plumbing
from dlexp.run.folder import job_number
from dlexp.search.best_preset import flatten
from dlexp.search.search_checks import study_direction
from dlexp.search.search_space import override_text
from dlexp.search.study_parts import open_storage
from tests.runs import DLEXP_TRAIN, assert_refused, tiny_sweep


def search(storage: Path, n_trials: int, *extra: str) -> list[str]:
    return [
        "-m", "hydra/sweeper=dlexp_optuna", f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=s", f"hydra.sweeper.n_trials={n_trials}", *extra,
    ]  # fmt: skip


def run(args: list[str], cwd: Path, wait: bool = True):
    env_cmd = [*DLEXP_TRAIN, *args]
    if not wait:
        return subprocess.Popen(env_cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(env_cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def load(storage: Path) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=open_storage(str(storage)))


def metrics(trial: optuna.trial.FrozenTrial) -> dict:
    return json.loads((Path(trial.user_attrs["job_dir"]) / "metrics.json").read_text())


def job_overrides(trial: optuna.trial.FrozenTrial) -> list[str]:
    path = Path(trial.user_attrs["job_dir"]) / ".hydra" / "overrides.yaml"
    return yaml.safe_load(path.read_text())


def without_plumbing(cfg) -> dict:
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)
    return {k: v for k, v in flatten(container).items() if not is_plumbing(k)}


SPACE = ["optim.lr=tag(log,interval(1e-3,1e-1))", "model.n_hidden=choice([16],[32,16])"]


@pytest.mark.slow  # ~14 s: three searches in subprocesses
def test_search_tells_the_study_what_each_job_recorded_and_resumes(tiny_cifar, tmp_path):
    storage, sweep = tmp_path / "s.journal", tmp_path / "sweep"
    args = [*search(storage, 2, "hydra.sweeper.n_jobs=2"), *SPACE, *tiny_sweep(tiny_cifar, sweep)]
    first = run(args, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    trials = load(storage).trials
    assert [t.number for t in trials] == [0, 1]
    for t in trials:
        record = metrics(t)
        assert record["status"] == "completed" and t.state == TrialState.COMPLETE
        assert t.value == record["objective"] == record["best"]["val/accuracy"]
        assert t.user_attrs["steps"] == record["steps"] == 4
        assert override_text("optim.lr", t.params["optim.lr"]) in job_overrides(t)
        assert f"search.trial={t.number}" in job_overrides(t)
        assert sorted(t.intermediate_values) == [2, 4]  # every evaluation was reported
    with (sweep / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["number"]), r["state"]) for r in rows] == [(i, "complete") for i in range(2)]
    assert (sweep / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"
    assert "| number | state | value | steps |" in (sweep / "trials.md").read_text()

    # best.yaml, used as an experiment preset, composes the best job's own config
    best = load(storage).best_trial
    preset = best_preset_config(sweep / "best.yaml", tmp_path / "presets")
    job_cfg = OmegaConf.load(Path(best.user_attrs["job_dir"]) / ".hydra" / "config.yaml")
    assert without_plumbing(preset) == without_plumbing(job_cfg)

    # rerunning with a larger n_trials continues the study; the same command again adds nothing
    for n_trials, folder in ((4, "again"), (4, "full")):
        args = [*search(storage, n_trials), *SPACE, *tiny_sweep(tiny_cifar, tmp_path / folder)]
        assert run(args, tmp_path).returncode == 0
    trials = load(storage).trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {Path(t.user_attrs["job_dir"]).parent.name for t in trials[2:]} == {"again"}
    assert not list((tmp_path / "full").glob("*/metrics.json"))


@pytest.mark.slow  # ~12 s: two searches at once
def test_two_processes_share_one_study_without_running_a_trial_twice(tiny_cifar, tmp_path):
    storage = tmp_path / "s.journal"
    commands = {name: [*search(storage, 4), SPACE[0], *tiny_sweep(tiny_cifar, tmp_path / name)]
                for name in ("a", "b")}  # fmt: skip
    procs = [run(args, tmp_path, wait=False) for args in commands.values()]
    for name, proc in zip("ab", procs, strict=True):
        _, err = proc.communicate(timeout=300)
        summary = tmp_path / name / "summary.md"
        shown = summary.read_text() if summary.exists() else ""
        assert proc.returncode == 0, err.decode()[-3000:] + shown
    trials = load(storage).trials
    assert 4 <= len(trials) <= 5  # two processes may both take the last place
    ran = {name: sorted(job_number(p.parent) for p in (tmp_path / name).glob("*/metrics.json"))
           for name in ("a", "b")}  # fmt: skip
    assert ran["a"] and ran["b"], "both processes ran trials"
    numbers = [int(o.split("=")[1]) for t in trials for o in job_overrides(t) if "trial=" in o]
    assert sorted(numbers) == [t.number for t in trials]  # each trial ran in exactly one job
    learning_rates = [t.params["optim.lr"] for t in trials]
    assert len(set(learning_rates)) == len(learning_rates)  # distinct seeds, distinct proposals


@pytest.mark.slow  # ~12 s: a search of three trials in a subprocess
def test_a_hopeless_trial_is_pruned_and_a_failed_one_told_fail(tiny_cifar, tmp_path):
    storage = tmp_path / "s.journal"
    # sampler seed 35 draws, for trials 0, 1, 2: a good rate, a hopeless one (chance accuracy), a
    # refused one (the optimizer fails the job); one study, one budget
    args = [*search(storage, 3), "seed=choice(1,2)", "optim.lr=choice(1e-2,1e-9,-1)",
            "hydra.sweeper.sampler.name=random", "hydra.sweeper.sampler.seed=35",
            "hydra.sweeper.pruner.n_startup_trials=1"]  # fmt: skip
    failed = run([*args, *tiny_sweep(tiny_cifar, tmp_path / "sweep")], tmp_path)
    assert failed.returncode == 1  # a failed job makes the sweep exit non-zero, after the study
    good, hopeless, bad = load(storage).trials
    assert good.state == TrialState.COMPLETE
    assert hopeless.state == TrialState.PRUNED
    record = metrics(hopeless)
    assert record["status"] == "pruned" and record["steps"] == 2 < 4
    assert record["reason"].startswith("pruned at step 2: val/accuracy")
    assert list(hopeless.intermediate_values) == [2]
    assert bad.state == TrialState.FAIL
    assert metrics(bad)["status"] == "failed"
    assert bad.user_attrs["reason"] == metrics(bad)["reason"]
    assert [good.params["optim.lr"], hopeless.params["optim.lr"], bad.params["optim.lr"]] == [
        1e-2,
        1e-9,
        -1,
    ]
    assert "| 2 | fail |" in (tmp_path / "sweep" / "trials.md").read_text()


def test_a_loss_is_minimised_and_a_test_metric_refused(tiny_cifar, tmp_path):
    storage = tmp_path / "s.journal"
    args = [*search(storage, 1), SPACE[0], "optimized_metric=val/loss"]
    assert run([*args, *tiny_sweep(tiny_cifar, tmp_path / "sweep")], tmp_path).returncode == 0
    assert load(storage).direction == optuna.study.StudyDirection.MINIMIZE
    assert load(storage).trials[0].value == metrics(load(storage).trials[0])["best"]["val/loss"]

    args = [*search(tmp_path / "t.journal", 1), SPACE[0], "optimized_metric=test/accuracy"]
    refused = run([*args, *tiny_sweep(tiny_cifar, tmp_path / "test")], tmp_path)
    line = (
        "dlexp-train: error: optimized_metric test/accuracy is a test metric: a search selects "
        "on validation, never on test; use val/accuracy or val/loss"
    )
    assert_refused(refused, line, tmp_path / "test", tmp_path / "t.journal")

    args = [*search(tmp_path / "t.journal", 1), "norm=choice(none,bogus)"]
    refused = run([*args, *tiny_sweep(tiny_cifar, tmp_path / "space")], tmp_path)
    line = (
        "dlexp-train: error: search space: unknown norm option 'bogus'; choose one of "
        "autograd_bn, custom_bn, none, torch_bn; nothing was run"
    )
    assert_refused(refused, line, tmp_path / "space")


def test_direction_rules():
    assert study_direction("val/accuracy", None) == "maximize"
    assert study_direction("train/accuracy", "maximize") == "maximize"
    assert study_direction("val/loss", None) == "minimize"
    with pytest.raises(ConfigError, match="contradicts optimized_metric val/loss"):
        study_direction("val/loss", "maximize")
    with pytest.raises(ConfigError, match="test metric"):
        study_direction("test/loss", None)


def best_preset_config(best_yaml: Path, folder: Path):
    """Compose `experiment=best` with best.yaml copied into a config search path."""
    (folder / "experiment").mkdir(parents=True)
    (folder / "experiment" / "best.yaml").write_text(best_yaml.read_text())
    register_config()  # as the commands and dlexp.compose do
    with initialize_config_module("dlexp.conf", version_base="1.3"):
        return compose("train", [f"hydra.searchpath=[file://{folder}]", "experiment=best"])


@pytest.mark.slow  # ~9 s: a search and its best preset
def test_hparams_search_runs_without_dash_m_and_keeps_the_study_at_a_stable_path(
    tiny_cifar, tmp_path
):
    args = ["hparams_search=torch_mlp", "hydra.sweeper.n_trials=1", "model.n_hidden=[16]"]
    proc = run([*args, *tiny_sweep(tiny_cifar, tmp_path / "sweep")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    journal = tmp_path / "outputs" / "torch_mlp" / "optuna" / "torch_mlp.journal"
    study = optuna.load_study(study_name="torch_mlp", storage=open_storage(str(journal)))
    assert len(study.trials) == 1
    # the command line fixed model.n_hidden and batch_size; the rest of the space is searched
    assert set(study.trials[0].params) == {
        "optim.lr",
        "optim.weight_decay",
        "model.dropout",
        "norm",
        "data.augment",
        "label_smoothing",
    }
    # best.yaml picks the preset's groups (model, optim, maybe norm) and reproduces the trial
    preset = best_preset_config(tmp_path / "sweep" / "best.yaml", tmp_path / "presets")
    job_dir = Path(study.best_trial.user_attrs["job_dir"])
    assert without_plumbing(preset) == without_plumbing(
        OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    )
    assert "  - override /optim: adamw" in (tmp_path / "sweep" / "best.yaml").read_text()


def test_registering_the_sweepers_is_cheap_and_imports_no_optuna():
    code = (
        "import sys; from dlexp.search import register_plugins; register_plugins(); "
        "register_plugins(); from hydra.core.plugins import Plugins; "
        "names = Plugins.instance().class_name_to_class; "
        "print('optuna' in sys.modules, sorted(n for n in names if 'dlexp' in n))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(" ", 1) == [
        "False",
        "['hydra_plugins.dlexp_sweepers.DlexpGridSweeper', "
        "'hydra_plugins.dlexp_sweepers.DlexpOptunaSweeper']\n",
    ]


def test_a_float_interval_on_an_int_key_is_refused_with_the_int_hint(tiny_cifar, tmp_path):
    args = [*search(tmp_path / "s.journal", 1), "log_freq=interval(1,3)"]
    proc = run([*args, *tiny_sweep(tiny_cifar, tmp_path / "sweep")], tmp_path)
    line = ("dlexp-train: error: search space: log_freq=1.0: expected an integer, got '1.0' (an "
            "int key needs int(interval(a, b))); nothing was run")  # fmt: skip
    assert_refused(proc, line, tmp_path / "sweep")
