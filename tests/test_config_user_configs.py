"""The user's own conf/ folder (dlexp.config.user_configs): searched before dlexp's configs from
wherever the user works, its train.yaml never the primary config, shadowing said in one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dlexp.config.user_configs import package_conf, user_conf_dir
from dlexp.search.best_preset import free_preset_name
from tests.conftest import compose_train
from tests.runs import DLEXP_TRAIN

PRESET = "# @package _global_\nmax_steps: 7\neval_freq: 7\nprogress: false\n"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working folder holding ./conf/experiment/mine.yaml, and the cwd."""
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "mine.yaml").write_text(PRESET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLEXP_CONFIG_DIR", raising=False)
    return tmp_path


def test_a_preset_in_the_working_folders_conf_runs_from_there(workdir, tiny_cifar):
    command = [*DLEXP_TRAIN, "experiment=mine", f"data.root={tiny_cifar}", "batch_size=20",
               "data.validation_size=50"]  # fmt: skip
    proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (record,) = workdir.glob("outputs/numpy_mlp/runs/*/metrics.json")
    assert json.loads(record.read_text())["steps"] == 7  # the user's preset's max_steps


def test_the_users_configs_come_first_and_their_train_yaml_is_never_the_primary(workdir, caplog):
    (workdir / "conf" / "train.yaml").write_text("max_steps: 999\n")
    (workdir / "conf" / "experiment" / "torch_mlp_tuned.yaml").write_text(PRESET)
    assert compose_train(["experiment=mine"]).max_steps == 7
    assert compose_train([]).max_steps == 1500  # dlexp's train.yaml, not the user's
    caplog.set_level("WARNING", logger="dlexp")
    shadowed = compose_train(["experiment=torch_mlp_tuned"])
    assert shadowed.max_steps == 7 and shadowed.model.name == "numpy_mlp"  # the user's file
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"{workdir / 'conf/experiment/torch_mlp_tuned.yaml'} shadows dlexp's own "
        "experiment/torch_mlp_tuned.yaml: yours is used"
    ]


def test_dlexp_config_dir_names_another_folder(workdir, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "experiment").mkdir()
    (elsewhere / "experiment" / "theirs.yaml").write_text(PRESET.replace("7", "3"))
    monkeypatch.setenv("DLEXP_CONFIG_DIR", str(elsewhere))
    assert user_conf_dir() == elsewhere.resolve()
    assert compose_train(["experiment=theirs"]).max_steps == 3
    with pytest.raises(Exception, match="mine"):  # ./conf is not searched then
        compose_train(["experiment=mine"])


def test_dlexps_own_conf_is_not_searched_twice(monkeypatch):
    monkeypatch.chdir(package_conf().parent)  # the checkout, whose conf/ is dlexp's own
    monkeypatch.delenv("DLEXP_CONFIG_DIR", raising=False)
    assert user_conf_dir() is None


def test_the_best_presets_name_never_overwrites_a_shipped_or_a_users_preset(workdir):
    assert (package_conf() / "experiment" / "torch_mlp_best.yaml").is_file()
    assert free_preset_name("torch_mlp_best") == "torch_mlp_best_2"
    (workdir / "conf" / "experiment" / "torch_mlp_best_2.yaml").write_text(PRESET)
    assert free_preset_name("torch_mlp_best") == "torch_mlp_best_3"
    assert free_preset_name("numpy_mlp_best") == "numpy_mlp_best"
    assert not Path("conf/experiment/numpy_mlp_best.yaml").exists()
