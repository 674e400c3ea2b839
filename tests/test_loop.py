"""The one training loop (dlexp.loop) driving a scripted fake backend: its step, log and eval
schedule, best tracking, early stopping, hooks that stop a run, stop requests, and FitResult."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlexp.data import BatchSampler
from dlexp.errors import ConfigError, DlexpError
from dlexp.loop import (
    EarlyStopping,
    FitResult,
    LoopSchedule,
    NotLearning,
    evaluate_all,
    fit,
    is_better,
)
from dlexp.run.record import RunStopped


class FakeBackend:
    """The backend protocol over scripted numbers; every call goes to the shared `events` log.

    Step s trains with lr s/10 and loss loss_at(s) (1/s by default); the k-th evaluation of a
    split (k = 1, 2, ...) returns scripted[split][k], or loss 1/k and accuracy k/10.
    """

    eval_splits = ("val", "test")

    def __init__(self, events: list, scripted=None, on_step=None, loss_at=None):
        self.events, self.scripted, self.on_step = events, scripted or {}, on_step
        self.loss_at = loss_at or (lambda step: 1 / step)
        self.steps, self.batches, self.pending = 0, [], []
        self.evaluations = dict.fromkeys(self.eval_splits, 0)

    def learning_rate(self) -> float:
        self.events.append("lr")
        return (self.steps + 1) / 10

    def train_step(self, batch) -> None:
        self.steps += 1
        self.events.append("train")
        self.batches.append(batch.indices.copy())
        self.pending.append(self.loss_at(self.steps))
        if self.on_step is not None:
            self.on_step(self.steps)

    def pop_train_stats(self) -> tuple[float, float]:
        self.events.append("pop")
        loss, self.pending = float(np.mean(self.pending)), []
        return loss, 0.5

    def evaluate(self, split: str) -> dict[str, float]:
        self.events.append(f"eval {split}")
        self.evaluations[split] += 1
        k = self.evaluations[split]
        default = {"loss": 1.0 / k, "accuracy": k / 10}
        return self.scripted.get(split, {}).get(k, default)


class Sink:
    def __init__(self, events: list):
        self.events, self.points = events, []

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.events.append(f"scalars {step} {' '.join(sorted(values))}")
        self.points.append((step, values))

    def step_done(self, step: int) -> None:
        self.events.append(f"done {step}")


class Checkpoints:
    def __init__(self, every: int):
        self.every, self.saved = every, []

    def due(self, step: int, is_last: bool) -> bool:
        return is_last or step % self.every == 0

    def save(self, step: int, result: FitResult, last: bool = True) -> None:
        self.saved.append((step, last, result.best.get("best_step")))


class Stop:
    def __init__(self, requested: bool = False):
        self.requested = requested

    def signal_name(self) -> str:
        return "SIGTERM"


def run_fit(max_steps, eval_freq, log_freq, metric="val/accuracy", result=None, **kwargs):
    """fit() on the fake backend; returns (result, backend, sink, events)."""
    events: list = []
    fake = {key: kwargs.pop(key, None) for key in ("scripted", "on_step", "loss_at")}
    backend = FakeBackend(events, **fake)
    sink = Sink(events)
    sampler = BatchSampler(40, 10, np.random.default_rng(0))
    schedule = LoopSchedule(max_steps, eval_freq, log_freq)
    result = fit(backend, sampler, schedule, sink, metric, result or FitResult(), progress=False,
                 **kwargs)  # fmt: skip
    return result, backend, sink, events


TRAIN = "train/accuracy train/loss train/lr"
EVAL = "test/accuracy test/loss val/accuracy val/loss"


def test_every_step_trains_and_logs_and_evaluates_on_the_hand_computed_schedule():
    _, backend, _, events = run_fit(max_steps=5, eval_freq=2, log_freq=3)
    evaluate = ["eval val", "eval test"]
    # the last step always logs and evaluates
    assert events == [
        "train", "done 1",
        "train", "done 2", *evaluate, f"scalars 2 {EVAL}",
        "lr", "train", "done 3", "pop", f"scalars 3 {TRAIN}",
        "train", "done 4", *evaluate, f"scalars 4 {EVAL}",
        "lr", "train", "done 5", "pop", f"scalars 5 {TRAIN}", *evaluate, f"scalars 5 {EVAL}",
    ]  # fmt: skip
    assert backend.steps == 5


@pytest.mark.parametrize(
    ("max_steps", "eval_freq", "log_freq", "eval_steps", "log_steps"),
    [(10, 4, 3, [4, 8, 10], [3, 6, 9, 10]), (6, 3, 2, [3, 6], [2, 4, 6]), (3, 5, 5, [3], [3])],
)
def test_eval_and_log_steps(max_steps, eval_freq, log_freq, eval_steps, log_steps):
    _, backend, sink, _ = run_fit(max_steps, eval_freq, log_freq)
    assert [s for s, v in sink.points if "val/accuracy" in v] == eval_steps
    assert [s for s, v in sink.points if "train/loss" in v] == log_steps
    assert backend.evaluations == {"val": len(eval_steps), "test": len(eval_steps)}


def test_each_step_takes_the_next_batch_of_the_sampler():
    _, backend, _, _ = run_fit(max_steps=6, eval_freq=6, log_freq=6)
    reference = BatchSampler(40, 10, np.random.default_rng(0))
    for got in backend.batches:  # 4 batches an epoch: the fifth starts a new permutation
        np.testing.assert_array_equal(got, reference.next_batch().indices)


def test_the_logged_lr_is_the_steps_own_and_the_loss_the_mean_since_the_last_log():
    result, _, sink, _ = run_fit(max_steps=7, eval_freq=7, log_freq=3)
    train = [(s, v) for s, v in sink.points if "train/loss" in v]
    assert [(s, v["train/lr"]) for s, v in train] == [(3, 0.3), (6, 0.6), (7, 0.7)]
    means = [np.mean([1, 1 / 2, 1 / 3]), np.mean([1 / 4, 1 / 5, 1 / 6]), 1 / 7]
    assert [v["train/loss"] for _, v in train] == pytest.approx(means)
    assert result.final["train/loss"] == pytest.approx(1 / 7)


def test_fit_result_holds_the_last_metrics_and_the_best_val_metrics():
    scripted = {"val": {1: {"loss": 0.9, "accuracy": 0.3}, 2: {"loss": 0.8, "accuracy": 0.5},
                        3: {"loss": 0.7, "accuracy": 0.4}},
                "test": {k: {"loss": 2.0 + k, "accuracy": k / 4} for k in (1, 2, 3)}}  # fmt: skip
    result, *_ = run_fit(max_steps=6, eval_freq=2, log_freq=4, scripted=scripted)
    assert result.steps == 6 and (result.status, result.reason) == ("completed", "")
    assert result.final == {
        "train/loss": pytest.approx(np.mean([1 / 5, 1 / 6])), "train/accuracy": 0.5,
        "val/loss": 0.7, "val/accuracy": 0.4, "test/loss": 5.0, "test/accuracy": 0.75,
    }  # fmt: skip
    assert result.best == {"val/loss": 0.8, "val/accuracy": 0.5, "best_step": 4}  # no test/
    assert result.eval_s >= 0


@pytest.mark.parametrize(
    ("metric", "best_step"),
    [("val/accuracy", 4), ("val/loss", 6), ("train/accuracy", None)],
)
def test_best_follows_the_metrics_direction_and_ties_keep_the_first(metric, best_step):
    accuracy, loss = [0.3, 0.5, 0.4, 0.5], [1.0, 1.2, 0.7, 0.7]  # evaluations at 2, 4, 6, 8
    scripted = {"val": {k + 1: {"loss": loss[k], "accuracy": accuracy[k]} for k in range(4)}}
    result, *_ = run_fit(max_steps=8, eval_freq=2, log_freq=8, metric=metric, scripted=scripted)
    assert result.best.get("best_step") == best_step
    if best_step is None:  # a train metric is never an evaluation's: nothing to select on
        assert result.best == {}


def test_is_better():
    assert is_better("val/loss", 0.5, 0.6) and not is_better("val/loss", 0.7, 0.6)
    assert is_better("val/accuracy", 0.7, 0.6) and not is_better("val/accuracy", 0.5, 0.6)
    assert is_better("train/loss", 9.0, None) and is_better("val/accuracy", 0.0, None)
    assert not is_better("val/loss", 0.6, 0.6) and not is_better("val/accuracy", 0.6, 0.6)


def test_patience_counts_evaluations_without_improvement():
    stop = EarlyStopping("val/loss", patience=2)
    for step, loss in [(1, 1.0), (2, 0.9), (3, 0.95), (4, 0.8), (5, 0.85)]:
        stop(step, {"val/loss": loss})  # 0.95 and 0.85 are one stale evaluation each
    with pytest.raises(RunStopped) as stopped:
        stop(6, {"val/loss": 0.8})  # equal is no improvement: the second in a row
    assert stopped.value.status == "early_stopped"
    assert stopped.value.reason == "val/loss has not improved on 0.8000 for 2 evaluations"


def test_early_stopping_state_round_trips_and_patience_is_checked():
    first = EarlyStopping("val/accuracy", patience=2)
    first(1, {"val/accuracy": 0.5})
    first(2, {"val/accuracy": 0.4})
    resumed = EarlyStopping("val/accuracy", patience=2)
    resumed.load_state_dict(first.state_dict())
    assert resumed.state_dict() == {"best": 0.5, "stale": 1}
    with pytest.raises(RunStopped, match=r"not improved on 0\.5000 for 2 evaluations"):
        resumed(3, {"val/accuracy": 0.45})
    with pytest.raises(ConfigError, match=r"early_stop\.patience must be >= 1 \(or null\), got 0"):
        EarlyStopping("val/loss", patience=0)


def test_early_stopping_ends_fit_at_the_evaluation_that_ran_out_and_checkpoints_it():
    accuracy = [0.5, 0.4, 0.6, 0.6, 0.55, 0.9]  # stale: -, 1, 0, 1 (a tie), 2 -> stop at the 5th
    scripted = {"val": {k + 1: {"loss": 1.0, "accuracy": a} for k, a in enumerate(accuracy)}}
    checkpoints = Checkpoints(every=100)
    result, backend, _, _ = run_fit(
        max_steps=20, eval_freq=2, log_freq=20, scripted=scripted,
        eval_hooks=[EarlyStopping("val/accuracy", patience=2)], checkpoints=checkpoints,
    )  # fmt: skip
    assert (result.status, result.steps, backend.steps) == ("early_stopped", 10, 10)
    assert result.reason == "val/accuracy has not improved on 0.6000 for 2 evaluations"
    assert result.best == {"val/loss": 1.0, "val/accuracy": 0.6, "best_step": 6}
    assert result.final["val/accuracy"] == 0.55  # the evaluation that stopped it is recorded
    # every evaluation saves (`best` when it is the best), the stopping one as `last` too
    assert checkpoints.saved == [(2, False, 2), (4, False, 2), (6, False, 6), (8, False, 6),
                                 (10, True, 6)]  # fmt: skip


def test_a_hook_that_raises_run_stopped_ends_the_run_with_its_status_and_later_hooks_wait():
    later = []

    def pruner(step, evaluated):
        assert set(evaluated) == set(EVAL.split())
        if step == 4:
            raise RunStopped("pruned", "pruned at step 4: val/accuracy 0.2")

    result, backend, _, _ = run_fit(
        max_steps=10, eval_freq=2, log_freq=10,
        eval_hooks=[pruner, lambda step, _: later.append(step)],
    )  # fmt: skip
    assert (result.status, result.reason) == ("pruned", "pruned at step 4: val/accuracy 0.2")
    assert result.steps == backend.steps == 4 and later == [2]
    assert result.best["best_step"] == 4  # updated before the hooks ran


def test_a_stop_request_ends_the_run_after_its_step_and_a_checkpoint():
    stop, checkpoints = Stop(), Checkpoints(every=100)

    def signal_during(step):
        stop.requested = step == 3

    result, backend, _, _ = run_fit(
        max_steps=10, eval_freq=5, log_freq=10, on_step=signal_during, stop=stop,
        checkpoints=checkpoints,
    )  # fmt: skip
    assert (result.status, result.reason) == ("interrupted", "stopped by SIGTERM at step 3")
    assert result.steps == backend.steps == 3
    assert checkpoints.saved == [(3, True, None)]


def test_a_stop_request_at_the_last_step_completes_the_run():
    stop = Stop()
    result, backend, _, _ = run_fit(
        max_steps=4, eval_freq=2, log_freq=2, stop=stop,
        on_step=lambda step: setattr(stop, "requested", step == 4),
    )  # fmt: skip
    assert (result.status, result.steps, backend.steps) == ("completed", 4, 4)


def test_a_stop_request_before_the_first_step_runs_nothing():
    result, backend, _, events = run_fit(
        max_steps=10, eval_freq=5, log_freq=5, result=FitResult(steps=6), stop=Stop(True)
    )
    assert (result.status, result.reason) == ("interrupted", "stopped by SIGTERM before step 7")
    assert result.steps == 6 and backend.steps == 0 and events == []


def test_a_resumed_fit_continues_the_schedule_from_its_step():
    result, backend, sink, _ = run_fit(
        max_steps=10, eval_freq=3, log_freq=4, result=FitResult(steps=5)
    )
    assert backend.steps == 5 and result.steps == 10
    assert [s for s, v in sink.points if "val/loss" in v] == [6, 9, 10]
    assert [s for s, v in sink.points if "train/loss" in v] == [8, 10]


def test_checkpoints_are_saved_when_due_and_at_every_evaluation():
    checkpoints = Checkpoints(every=3)
    run_fit(max_steps=7, eval_freq=2, log_freq=7, checkpoints=checkpoints)
    steps_and_last = [(step, last) for step, last, _ in checkpoints.saved]
    assert steps_and_last == [(2, False), (3, True), (4, False), (6, True), (7, True)]


def test_a_diverged_loss_is_one_error_and_the_result_keeps_its_step():
    result = FitResult()
    message = r"^training diverged: train loss is inf at step 6; try a lower optim.lr$"
    with pytest.raises(DlexpError, match=message):
        run_fit(max_steps=10, eval_freq=5, log_freq=3, result=result,
                loss_at=lambda step: math.inf if step == 5 else 1.0)  # fmt: skip
    assert result.steps == 6  # the failed run's record says where it failed
    assert result.final["val/loss"] == 1.0 and result.final["train/loss"] == 1.0  # steps 1-5


@pytest.mark.parametrize("name", ["max_steps", "eval_freq", "log_freq", "batch_size",
                                  "eval_batch_size"])  # fmt: skip
def test_a_schedule_value_below_one_is_refused(name):
    values = {"max_steps": 5, "eval_freq": 1, "log_freq": 1, name: 0}
    with pytest.raises(ConfigError, match=rf"^{name} must be >= 1, got 0$"):
        LoopSchedule(**values)


def test_checkpoint_every_is_checked_and_null_means_every_evaluation():
    with pytest.raises(ConfigError, match=r"^checkpoint.every must be >= 0 \(or null\), got -1$"):
        LoopSchedule(5, 2, 1, checkpoint_every=-1)
    assert LoopSchedule(5, 2, 1).checkpoint_interval == 2
    assert LoopSchedule(5, 2, 1, checkpoint_every=0).checkpoint_interval == 0
    assert LoopSchedule(5, 2, 1, checkpoint_every=3).checkpoint_interval == 3


def test_evaluate_all_keys_each_splits_metrics_by_tensorboard_tag():
    backend = FakeBackend([])
    assert evaluate_all(backend) == {
        "val/loss": 1.0, "val/accuracy": 0.1, "test/loss": 1.0, "test/accuracy": 0.1,
    }  # fmt: skip


CHANCE = math.log(10)


@pytest.mark.parametrize(
    ("losses", "warns"),
    [
        ([CHANCE, CHANCE * 1.005, CHANCE * 0.995], True),  # within 1% three times
        ([CHANCE, CHANCE, CHANCE * 0.98], False),  # the third evaluation learned
        ([CHANCE * 0.9, CHANCE, CHANCE], False),  # it learned, then fell back: not this warning
        ([CHANCE, CHANCE], False),  # only two evaluations so far
    ],
)
def test_not_learning_warns_once_at_the_third_evaluation_at_chance(losses, warns):
    hook = NotLearning(10, "try model.init_std=1e-2")
    lines = [hook(100 * (i + 1), {"train/loss": loss}) for i, loss in enumerate(losses)]
    assert lines[:-1] == [None] * (len(losses) - 1)
    if warns:
        assert lines[-1] == (
            "not learning: the train loss is still 2.2911, chance level (ln 10 = 2.3026), after "
            "3 evaluations (step 300); try model.init_std=1e-2"
        )
    else:
        assert lines[-1] is None
    if len(losses) == 3:
        assert hook(400, {"train/loss": CHANCE}) is None  # checked over the first three only


def test_not_learning_resumes_its_count_from_a_checkpoint():
    first = NotLearning(10, "fix")
    first(100, {"train/loss": CHANCE})
    first(200, {"train/loss": CHANCE})
    resumed = NotLearning(10, "fix")
    resumed.load_state_dict(first.state_dict())
    assert resumed(300, {"train/loss": CHANCE}) == first(300, {"train/loss": CHANCE})
    assert resumed.state_dict() == first.state_dict() == {"seen": 3, "flat": True}


def test_fit_records_a_hooks_warning_and_the_train_loss_reaches_it():
    hook = NotLearning(10, "fix it")
    result, *_ = run_fit(max_steps=6, eval_freq=2, log_freq=1, eval_hooks=[hook],
                         loss_at=lambda step: CHANCE)  # fmt: skip
    assert len(result.warnings) == 1 and result.warnings[0].startswith("not learning: ")
    assert "(step 6); fix it" in result.warnings[0]
    learning, *_ = run_fit(max_steps=6, eval_freq=2, log_freq=1, eval_hooks=[NotLearning(10, "")])
    assert learning.warnings == []  # the default fake loss, 1/step, is far from ln 10


def test_the_progress_bars_last_frame_shows_the_final_evaluation(capsys):
    scripted = {"val": {1: {"loss": 1.0, "accuracy": 0.25}, 2: {"loss": 1.0, "accuracy": 0.75}}}
    backend = FakeBackend([], scripted=scripted)
    sampler = BatchSampler(40, 10, np.random.default_rng(0))
    # the last log (step 4) comes before the last evaluation (step 5)
    fit(backend, sampler, LoopSchedule(5, 3, 4), Sink([]), "val/accuracy", FitResult())
    frames = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()
    last = [f for f in frames if "/5" in f][-1]
    assert last.startswith("100%") and last.endswith("loss 0.200, val acc 0.750]"), last
