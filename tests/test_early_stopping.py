"""early_stop.patience: evaluations without improvement end a run with status early_stopped."""

from __future__ import annotations

import json

import pytest

from dlexp.errors import ConfigError
from dlexp.loop import EarlyStopping
from dlexp.run.record import RunStopped
from dlexp.train import train


def test_patience_counts_evaluations_without_improvement():
    stop = EarlyStopping("val/loss", patience=2)
    for step, loss in [(1, 1.0), (2, 0.9), (3, 0.95), (4, 0.8), (5, 0.85)]:
        stop(step, {"val/loss": loss})  # 0.95 and 0.85 are one stale evaluation each
    with pytest.raises(RunStopped) as stopped:
        stop(6, {"val/loss": 0.8})  # equal is no improvement: the second in a row
    assert stopped.value.status == "early_stopped"
    assert stopped.value.reason == "val/loss has not improved on 0.8000 for 2 evaluations"


def test_an_early_stopped_run_records_its_status_and_best(tiny_cfg, tmp_path):
    # lr 0 never improves: the first evaluation is the best, the next two are stale
    returned = train(
        tiny_cfg("optim.lr=1e-12", "max_steps=50", "eval_freq=5", "early_stop.patience=2")
    )
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "early_stopped" and record["steps"] == 15
    assert record["best"]["best_step"] == 5
    assert returned == record["objective"] == record["best"]["val/accuracy"]


def test_patience_is_checked(tiny_cfg):
    with pytest.raises(ConfigError, match=r"early_stop\.patience must be >= 1"):
        train(tiny_cfg("early_stop.patience=0"))
    with pytest.raises(ConfigError, match="counts evaluations of a val metric"):
        train(tiny_cfg("data.validation_size=0", "optimized_metric=train/accuracy",
                       "early_stop.patience=3"))  # fmt: skip
