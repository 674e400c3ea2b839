"""A torch-free TensorBoard writer: scalars and an HParams record in the run's own event file."""

from __future__ import annotations

import time
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

FLUSH_SECS = 10  # curves show up live in TensorBoard within this many seconds


class TensorBoardLogger:
    """Scalars through `tensorboard`'s own event writer: the NumPy path never imports torch."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None):
        self._writer = EventFileWriter(str(log_dir), flush_secs=FLUSH_SECS)
        if purge_step is not None:
            # TensorBoard drops the points at and after this step that earlier files hold: a
            # resumed run rewrites them (the same convention as torch's SummaryWriter).
            start = SessionLog(status=SessionLog.START)
            self._writer.add_event(Event(wall_time=time.time(), step=purge_step, session_log=start))

    def _add(self, summary: Summary, step: int) -> None:
        self._writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        summary = Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in values.items()])
        self._add(summary, step)

    def hparams(self, hparams: dict, metric_tags: list[str]) -> None:
        """Record this run's hyperparameters for the HParams tab; `metric_tags` name its scalars."""
        config = hparams_summary.hparams_config_pb(
            hparams=[hparams_summary.HParam(name) for name in sorted(hparams)],
            metrics=[hparams_summary.Metric(tag) for tag in metric_tags],
        )
        self._add(config, 0)
        self._add(hparams_summary.hparams_pb(hparams), 0)

    def close(self) -> None:
        self._writer.close()
