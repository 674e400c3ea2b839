"""The train entrypoint end to end on the tiny dataset (NumPy MLP), read back from metrics.json
and TensorBoard."""

from __future__ import annotations

import json
import subprocess

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlexp.training import train
from tests.runs import read_scalars, tiny_command


def test_twenty_step_run_logs_and_returns_metric(tiny_cfg, tmp_path):
    cfg = tiny_cfg("max_steps=20", "eval_freq=7", "log_freq=5")
    returned = train(cfg).objective
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    scalars = read_scalars(run)
    for tag in (
        "train/loss",
        "train/accuracy",
        "train/lr",
        "val/loss",
        "val/accuracy",
        "test/loss",
        "test/accuracy",
    ):
        assert tag in scalars, tag
    assert [e.step for e in scalars["val/accuracy"]] == [
        7,
        14,
        20,
    ]  # the last step always evaluates
    assert [e.step for e in scalars["train/loss"]] == [5, 10, 15, 20]
    for tag, events in scalars.items():
        if tag in metrics["final"]:
            assert events[-1].value == pytest.approx(metrics["final"][tag], rel=1e-6)
    # the objective is the best evaluation, not the last one
    best_step = max(scalars["val/accuracy"], key=lambda e: e.value).step
    assert metrics["best"]["best_step"] == best_step
    assert returned == metrics["objective"] == metrics["best"]["val/accuracy"]
    assert metrics["status"] == "completed" and metrics["steps"] == 20
    assert metrics["best"]["best_step"] in (7, 14, 20)
    timing_keys = {"wall_s", "startup_s", "eval_s", "steps_per_s", "threads", "compile_s"}
    assert set(metrics["timing"]) == timing_keys and metrics["timing"]["compile_s"] == 0.0


def test_startup_of_a_later_run_in_the_same_process_starts_after_the_previous_run(
    tiny_cfg, tmp_path, monkeypatch
):
    """A -m sweep runs its jobs in one process; job 2's start-up must not include job 1."""
    import time

    import dlexp.run.timing

    monkeypatch.setattr(dlexp.run.timing, "_previous_run_end", None)
    monkeypatch.setattr(dlexp.run.timing, "process_start_time", lambda: time.time() - 1000)

    def startup_s(out):
        train(tiny_cfg("max_steps=2", f"output_dir={tmp_path / out}"))
        return json.loads((tmp_path / out / "metrics.json").read_text())["timing"]["startup_s"]

    assert startup_s("first") >= 1000  # counted from the (pretended) process start
    assert startup_s("second") < 100  # counted from the end of the first run


def test_a_failed_run_still_ends_the_start_up_clock(tiny_cfg, tmp_path, monkeypatch):
    import time

    import dlexp.run.timing
    from dlexp.errors import ConfigError

    monkeypatch.setattr(dlexp.run.timing, "_previous_run_end", None)
    monkeypatch.setattr(dlexp.run.timing, "process_start_time", lambda: time.time() - 1000)
    with pytest.raises(ConfigError):
        train(tiny_cfg("optim.lr=0"))
    train(tiny_cfg("max_steps=2"))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["timing"]["startup_s"] < 100


def test_hparams_sit_in_the_runs_own_event_file(tiny_cfg, tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    train(tiny_cfg("max_steps=4", "optim.lr=0.01"))
    run = tmp_path / "run"
    # no hparams sub-folder: TensorBoard would list it as a run of its own (.hydra: the config)
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == [".hydra", "checkpoints"]
    acc = EventAccumulator(str(run))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["optim.lr"].number_value == pytest.approx(0.01)
    assert hparams["model.name"].string_value == "numpy_mlp"
    assert "_hparams_/experiment" not in content  # TensorBoard builds it from every run shown
    assert {"val/accuracy", "test/accuracy", "train/loss"} <= set(acc.Tags()["scalars"])


def test_no_validation_split_trains_on_everything(tiny_cfg, tmp_path):
    cfg = tiny_cfg("data.validation_size=0", "optimized_metric=train/accuracy", "max_steps=3")
    returned = train(cfg).objective
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "val/accuracy" not in metrics["final"] and "test/accuracy" in metrics["final"]
    assert metrics["best"] == {}  # nothing to select on without validation data
    assert returned == metrics["final"]["train/accuracy"]


def test_empty_hidden_list_is_a_linear_classifier(tiny_cfg):
    assert 0 <= train(tiny_cfg("model.n_hidden=[]", "max_steps=3")).objective <= 1


def test_an_early_stopped_run_records_its_status_and_best(tiny_cfg, tmp_path):
    # lr 0 never improves: the first evaluation is the best, the next two are stale
    returned = train(
        tiny_cfg("optim.lr=1e-12", "max_steps=50", "eval_freq=5", "early_stop.patience=2")
    ).objective
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "early_stopped" and record["steps"] == 15
    assert record["best"]["best_step"] == 5
    assert returned == record["objective"] == record["best"]["val/accuracy"]


def test_a_resumed_runs_summary_counts_this_processs_steps_and_says_from_where(
    tiny_cifar, tmp_path
):
    run = tmp_path / "run"
    first = subprocess.run(tiny_command(tiny_cifar, run, "max_steps=20"), capture_output=True,
                           text=True, check=True)  # fmt: skip
    assert "] 20 steps in " in first.stdout + first.stderr
    resumed = subprocess.run(tiny_command(tiny_cifar, run, f"resume={run}", "max_steps=30"),
                             capture_output=True, text=True, check=True)  # fmt: skip
    assert "] 10 steps (resumed: 21-30) in " in resumed.stdout + resumed.stderr
    assert json.loads((run / "metrics.json").read_text())["steps"] == 30


def test_a_run_at_chance_level_says_so_in_its_record_and_log(tiny_cfg, tmp_path, caplog):
    # two hidden layers at the course's 1e-4 init: the signal vanishes, the loss stays at ln 10
    caplog.set_level("WARNING", logger="dlexp")
    train(tiny_cfg("model.n_hidden=[64,64]", "max_steps=30", "eval_freq=10", "log_freq=10"))
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "completed"
    assert len(record["warnings"]) == 1
    assert record["warnings"][0].startswith("not learning: the train loss is still 2.30")
    assert record["warnings"][0].endswith("try model.init_std=1e-2")
    assert [r.getMessage() for r in caplog.records] == record["warnings"]
    fixed_cfg = tiny_cfg(
        "model.n_hidden=[64,64]",
        "model.init_std=1e-2",
        "max_steps=30",
        "eval_freq=10",
        "log_freq=10",
        f"output_dir={tmp_path / 'fixed'}",
    )
    fixed = train(fixed_cfg)
    assert "warnings" not in json.loads((fixed.folder / "metrics.json").read_text())
