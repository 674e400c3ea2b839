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

from omegaconf import DictConfig, OmegaConf

from dlexp.errors import ConfigError
from dlexp.run.folder import read_saved_config
from dlexp.run.hparams import run_hparams


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
    active run, so the jobs of a sweep in one process never mix.

    Its params are every key of the run's resolved config, flattened (`optim.lr`). A new
    experiment keeps its artifacts beside a local store (`outputs/mlflow-artifacts` for the
    default `sqlite:///outputs/mlflow.db`), never in `./mlruns`. `upload_run_files(out)` logs
    the run folder's files that exist: metrics.json, report.md/.html and report_files/ (from
    dlexp-report), and checkpoints/best.safetensors when `log_checkpoint`.
    """

    STATUS: ClassVar[dict[str, str]] = {
        "completed": "FINISHED",
        "failed": "FAILED",
        "interrupted": "KILLED",
    }
    RECORD = "mlflow.json"  # in the run folder: which MLflow run it logs to, and how
    FILES = ("metrics.json", "report.md", "report.html")
    FOLDERS = ("report_files",)  # the report's plots
    BEST = "checkpoints/best.safetensors"
    MAX_PARAMS, MAX_VALUE = 100, 6000  # MLflow's params per log_batch, characters per value

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        log_checkpoint: bool = False,
        *,
        out: Path,
        hparams: dict,
    ):
        """log_checkpoint: also log the best checkpoint as an artifact. The run passes `out`, its
        folder, and `hparams`, its HParams keys (logged too, with the whole config)."""
        # An extra, and ~4-10 s to import: only a run with logger=mlflow pays it, here.
        from mlflow.tracking import MlflowClient

        self._client, self._out = MlflowClient(tracking_uri=tracking_uri), out
        record = out / self.RECORD
        if record.is_file():
            self._run_id = json.loads(record.read_text())["run_id"]
            self._client.update_run(self._run_id, status="RUNNING")
            return
        found = self._client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found
            else self._client.create_experiment(
                experiment, artifact_location=self.artifact_root(tracking_uri)
            )
        )
        run = self._client.create_run(experiment_id, run_name=out.name, tags={"run_dir": str(out)})
        self._run_id = run.info.run_id
        saved = {"tracking_uri": tracking_uri, "run_id": self._run_id}
        record.write_text(json.dumps({**saved, "log_checkpoint": log_checkpoint}))
        self._log_params({**self.flat_config(out), **hparams})

    @staticmethod
    def artifact_root(tracking_uri: str) -> str | None:
        """A local store's sibling folder `mlflow-artifacts` (a file URI); None (the server's
        choice) for a remote one."""
        for scheme in ("sqlite:///", "file://", ""):  # "": a plain path (it has a "/")
            path = tracking_uri[len(scheme) :]
            if tracking_uri.startswith(scheme) and "://" not in path and "/" in path:
                store = Path(path).absolute()
                return (store.parent / "mlflow-artifacts").as_uri()
        return None

    @staticmethod
    def flat_config(out: Path) -> dict[str, object]:
        """The run's saved config, resolved, as {dotted key: value}; lists stay one value."""
        cfg = read_saved_config(out)
        if cfg is None:
            return {}
        try:
            tree = OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # an interpolation only Hydra resolves: log it as written
            tree = OmegaConf.to_container(cfg, resolve=False)
        flat: dict[str, object] = {}

        def walk(node: dict, prefix: str) -> None:
            for key, value in node.items():
                if isinstance(value, dict) and value:
                    walk(value, f"{prefix}{key}.")
                else:
                    flat[f"{prefix}{key}"] = value

        walk(tree, "")
        return flat

    def _log_params(self, values: dict) -> None:
        from mlflow.entities import Param  # (as __init__)

        params = [Param(k, str(v)[: self.MAX_VALUE]) for k, v in values.items()]
        for i in range(0, len(params), self.MAX_PARAMS):
            self._client.log_batch(self._run_id, params=params[i : i + self.MAX_PARAMS])

    def scalars(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric  # (as __init__)

        now = int(time.time() * 1000)
        metrics = [Metric(tag, float(v), now, step) for tag, v in values.items()]
        self._client.log_batch(self._run_id, metrics=metrics)

    def close(self, status: str) -> None:
        self._client.set_terminated(self._run_id, status=self.STATUS.get(status, "FINISHED"))

    @classmethod
    def upload_run_files(cls, out: Path, client=None) -> list[str]:
        """Log the files of run folder `out` that exist now to its MLflow run (named in its
        mlflow.json; nothing without one); returns their paths relative to `out`."""
        record = Path(out) / cls.RECORD
        if not record.is_file():
            return []
        saved = json.loads(record.read_text())
        if client is None:
            from mlflow.tracking import MlflowClient  # (as __init__)

            client = MlflowClient(tracking_uri=saved["tracking_uri"])
        names = [*cls.FILES, *([cls.BEST] if saved.get("log_checkpoint") else [])]
        files = [Path(out) / name for name in names if (Path(out) / name).is_file()]
        for folder in cls.FOLDERS:
            files.extend(sorted(p for p in (Path(out) / folder).glob("*") if p.is_file()))
        logged = []
        for path in files:
            relative = path.relative_to(out)
            parent = relative.parent.as_posix()
            client.log_artifact(saved["run_id"], str(path), None if parent == "." else parent)
            logged.append(relative.as_posix())
        return logged


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

    def __init__(
        self, cfg: DictConfig, out: Path, first_step: int, backend, distributed: dict | None = None
    ):
        """`distributed` ({world_size, backend}) joins a data-parallel run's HParams."""
        chosen = cfg.logger or {}
        purge_step = first_step + 1 if first_step else None  # a resume restarts its curves here
        self.hparams = run_hparams(cfg)
        for key, value in (distributed or {}).items():
            self.hparams[f"distributed.{key}"] = value
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

    def finish(self, steps: int, data) -> None:
        """After the loop: the HParams record and the final figures."""
        if self.tensorboard is None:
            return
        self.tensorboard.hparams(self.hparams, run_folder=self.out)
        predictions = self._backend.last_predictions
        if self._final_figures and predictions:
            from dlexp.run.final_figures import write_final_figures  # matplotlib: not at start-up

            write_final_figures(self.tensorboard, steps, data, predictions)

    def record_written(self) -> None:
        """After metrics.json: MLflow gets the run's files (metrics.json, best checkpoint)."""
        if any(isinstance(sink, MLflowLogger) for sink in self._sinks):
            MLflowLogger.upload_run_files(self.out)

    def close(self, status: str) -> None:
        for sink in self._sinks:
            if sink is self.tensorboard:
                sink.close()
            else:
                sink.close(status)


class NoLoggers:
    """The sink of a data-parallel run's ranks above 0: rank 0 alone logs."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        pass

    def step_done(self, step: int) -> None:
        pass

    def finish(self, steps: int, data) -> None:
        pass

    def record_written(self) -> None:
        pass

    def close(self, status: str) -> None:
        pass
