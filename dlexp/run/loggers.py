"""The `logger` group: one sink for the loop, fanned out to TensorBoard, a CSV file and MLflow.

The loop calls `scalars(step, values)` at every logged step and evaluation, and `step_done(step)`
after every step (weight histograms every `logger.tensorboard.histogram_freq` steps). The run
calls `finish(...)` once the loop has ended (HParams, the final figures) and `close(status)`.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import time
from pathlib import Path
from typing import ClassVar

from omegaconf import DictConfig

from dlexp.errors import ConfigError
from dlexp.run.hparams import ordered_metrics, run_hparams


def tensorboard_options(histogram_freq: int = 0, final_figures: bool = True) -> dict:
    """The `logger.tensorboard` keys, range-checked: histogram_freq is the steps between weight and
    gradient histograms (0: none); final_figures writes the confusion matrix, per-class accuracy
    and misclassified test images at the last evaluation."""
    if histogram_freq < 0:
        raise ConfigError(f"logger.tensorboard.histogram_freq must be >= 0, got {histogram_freq}")
    return {"histogram_freq": histogram_freq, "final_figures": final_figures}


class CSVLogger:
    """<run>/metrics.csv: one `step,tag,value` row per scalar, flushed as it is written."""

    def __init__(self, file: str = "metrics.csv", *, out: Path, purge_step: int | None = None):
        path = out / file
        kept: list[list[str]] = []
        if purge_step is not None and path.is_file():  # a resume rewrites the later points
            with path.open(newline="") as f:
                kept = [row for row in list(csv.reader(f))[1:] if int(row[0]) < purge_step]
        fresh = purge_step is not None or not path.is_file()
        self._file = path.open("w" if fresh else "a", newline="")
        self._writer = csv.writer(self._file)
        if fresh:
            self._writer.writerows([["step", "tag", "value"], *kept])

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._writer.writerows([step, tag, repr(float(v))] for tag, v in values.items())
        self._file.flush()

    def close(self, status: str) -> None:
        self._file.close()


class MLflowLogger:
    """One MLflow run per dlexp run (a resume continues it), through MlflowClient: no global
    active run, so the jobs of a sweep in one process never mix."""

    STATUS: ClassVar[dict[str, str]] = {
        "completed": "FINISHED",
        "failed": "FAILED",
        "interrupted": "KILLED",
    }

    def __init__(self, tracking_uri: str, experiment: str, *, out: Path, hparams: dict):
        from mlflow.tracking import MlflowClient  # an extra: only with logger=mlflow

        self._client = MlflowClient(tracking_uri=tracking_uri)
        record = out / "mlflow.json"  # which MLflow run this folder logs to
        if record.is_file():
            self._run_id = json.loads(record.read_text())["run_id"]
            self._client.update_run(self._run_id, status="RUNNING")
            return
        found = self._client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self._client.create_experiment(experiment)
        run = self._client.create_run(experiment_id, run_name=out.name, tags={"run_dir": str(out)})
        self._run_id = run.info.run_id
        record.write_text(json.dumps({"tracking_uri": tracking_uri, "run_id": self._run_id}))
        from mlflow.entities import Param  # (as above)

        params = [Param(k, str(v)) for k, v in hparams.items()]
        self._client.log_batch(self._run_id, params=params)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric  # (as __init__)

        now = int(time.time() * 1000)
        metrics = [Metric(tag, float(v), now, step) for tag, v in values.items()]
        self._client.log_batch(self._run_id, metrics=metrics)

    def close(self, status: str) -> None:
        self._client.set_terminated(self._run_id, status=self.STATUS.get(status, "FINISHED"))


# Each logger's keys are this constructor's (or spec function's) arguments: the `logger` group's
# schemas (dlexp.config.schema). The run passes the rest (out, purge_step, hparams).
LOGGER_ARGUMENTS = {"tensorboard": tensorboard_options, "csv": CSVLogger, "mlflow": MLflowLogger}


def check_logger_config(cfg: DictConfig) -> None:
    """Refuse an unknown logger, a bad key value or a missing MLflow before any work starts."""
    chosen = cfg.logger or {}
    unknown = sorted(set(chosen) - set(LOGGER_ARGUMENTS))
    if unknown:
        names = ", ".join(LOGGER_ARGUMENTS)
        raise ConfigError(f"unknown logger {unknown[0]!r}; choose from {names}")
    if "tensorboard" in chosen:
        tensorboard_options(**chosen.tensorboard)
    if "mlflow" in chosen and importlib.util.find_spec("mlflow") is None:
        raise ConfigError('logger=mlflow needs MLflow: pip install "dlexp[mlflow]"')


class RunLoggers:
    """The loop's one sink: every selected logger gets every scalar."""

    def __init__(self, cfg: DictConfig, out: Path, first_step: int, backend):
        chosen = cfg.logger or {}
        purge_step = first_step + 1 if first_step else None  # a resume restarts its curves here
        self.hparams, self._swept = run_hparams(cfg)
        self.out, self._backend = out, backend
        self.tensorboard = None
        options = {"histogram_freq": 0, "final_figures": False}
        if "tensorboard" in chosen:
            # TensorBoard's protobufs: when a run opens its loggers, not when a config is checked
            from dlexp.run.tensorboard import TensorBoardLogger

            self.tensorboard = TensorBoardLogger(out, purge_step)
            options = tensorboard_options(**chosen.tensorboard)
        self._histogram_freq, self._final_figures = (
            options["histogram_freq"],
            options["final_figures"],
        )
        self._sinks: list = [self.tensorboard] if self.tensorboard else []
        if "csv" in chosen:
            self._sinks.append(CSVLogger(**chosen.csv, out=out, purge_step=purge_step))
        if "mlflow" in chosen:
            self._sinks.append(MLflowLogger(**chosen.mlflow, out=out, hparams=self.hparams))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for sink in self._sinks:
            sink.scalars(step, values)

    def step_done(self, step: int) -> None:
        if self._histogram_freq and step % self._histogram_freq == 0:
            from dlexp.run.final_figures import write_histograms  # matplotlib: not at start-up

            write_histograms(self.tensorboard, step, self._backend.parameter_arrays())

    def finish(self, steps: int, final: dict[str, float], data) -> None:
        """After the loop: HParams (swept keys first, val metrics first) and the final figures."""
        if self.tensorboard is None:
            return
        metrics = ordered_metrics(final)
        self.tensorboard.hparams(self.hparams, metrics, run_folder=self.out, differs=self._swept)
        predictions = self._backend.last_predictions
        if self._final_figures and predictions:
            from dlexp.run.final_figures import write_final_figures  # matplotlib: not at start-up

            write_final_figures(self.tensorboard, steps, data, predictions)

    def close(self, status: str) -> None:
        for sink in self._sinks:
            if sink is self.tensorboard:
                sink.close()
            else:
                sink.close(status)
