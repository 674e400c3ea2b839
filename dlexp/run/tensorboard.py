"""A torch-free TensorBoard writer: scalars, PNG images, histograms and an HParams record in the
run's own event file, through `tensorboard`'s own protos (no torch, no TensorFlow)."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.text import summary_v2 as text_summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

FLUSH_SECS = 10  # curves show up live in TensorBoard within this many seconds
PNG_COLORSPACE = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> channels (grey, RGB, grey+A, RGBA)


@functools.cache
def tensorflow_bins() -> np.ndarray:
    """The bucket edges of torch's `add_histogram(bins="tensorflow")`: 0 and ±1e-12 * 1.1**k up
    to 1e20, built by the same repeated multiplication so the edges match it bit for bit."""
    edge, positive = 1e-12, []
    while edge < 1e20:
        positive.append(edge)
        edge *= 1.1
    return np.array([-e for e in reversed(positive)] + [0.0] + positive)


def png_header(png: bytes) -> tuple[int, int, int]:
    """(height, width, channels) from a PNG's IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return height, width, PNG_COLORSPACE.get(png[25], 4)


def histogram_proto(values: np.ndarray, bins: np.ndarray | None = None) -> HistogramProto:
    """The proto torch's `summary.histogram` builds: only the buckets from the first to the last
    non-empty one, plus an empty one on the left (TensorBoard keeps only right-hand limits)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("a histogram needs at least one value")
    counts, limits = np.histogram(values, bins=tensorflow_bins() if bins is None else bins)
    nonzero = np.flatnonzero(counts)
    start, end = (nonzero[0], nonzero[-1] + 1) if nonzero.size else (0, 1)
    counts = counts[start - 1 : end] if start > 0 else np.concatenate([[0], counts[:end]])
    return HistogramProto(
        min=values.min(),
        max=values.max(),
        num=values.size,
        sum=values.sum(),
        sum_squares=values.dot(values),
        bucket_limit=limits[start : end + 1].tolist(),
        bucket=counts.tolist(),
    )


def run_name(folder: str | Path) -> str:
    """The name `tensorboard --logdir outputs` gives a run: its folder relative to the nearest
    ancestor named `outputs` (`torch_mlp/runs/2026-...`), else the folder's own name."""
    folder = Path(folder).absolute()
    for parent in folder.parents:
        if parent.name == "outputs":
            return folder.relative_to(parent).as_posix()
    return folder.name


class TensorBoardLogger:
    """TensorBoard's event writer without torch: the NumPy path never imports it."""

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

    def image(
        self, tag: str, png: bytes, step: int, height: int, width: int, colorspace: int = 4
    ) -> None:
        """A PNG for the Images tab, as torch's `add_image`/`add_figure` write it.

        Args:
            colorspace: channels: 1 grey, 3 RGB, 4 RGBA (matplotlib's PNGs).
        """
        image = Summary.Image(
            height=height, width=width, colorspace=colorspace, encoded_image_string=png
        )
        self._add(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def text(self, tag: str, markdown: str, step: int) -> None:
        """Markdown (tables included) for the Text tab; Time Series and Scalars never show it."""
        self._add(text_summary.text_pb(tag, markdown), step)

    def histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        """A histogram of `values` (any shape) with torch's default "tensorflow" buckets."""
        self._add(Summary(value=[Summary.Value(tag=tag, histo=histogram_proto(values))]), step)

    def hparams(
        self, hparams: dict, trial_id: str | None = None, run_folder: str | Path | None = None
    ) -> None:
        """Record this run's hyperparameters for the HParams tab: a session start, no experiment.

        TensorBoard takes the HParams table's columns from one run's experiment summary, if any
        run has one, and picks that run in the order it found the folders. A single run's summary
        beside a sweep then hid the sweep's keys on some file systems. With none, TensorBoard
        builds the table from every run it shows: all their keys, the ones whose values differ
        between those runs first, and every scalar tag as a metric.

        Args:
            trial_id: keeps runs with identical configs apart (default: `run_folder`'s
                `run_name`, else a hash of `hparams`).
            run_folder: the run's folder, named in the Trial ID column as TensorBoard names
                the run when it opens `outputs/`.
        """
        if trial_id is None and run_folder is not None:
            trial_id = run_name(run_folder)
        self._add(hparams_summary.hparams_pb(hparams, trial_id=trial_id), 0)

    def close(self) -> None:
        self._writer.close()
