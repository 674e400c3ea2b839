"""The torch-free TensorBoard writer, read back with TensorBoard's own EventAccumulator and
compared with torch's SummaryWriter protos."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlexp.run.tensorboard import (
    TensorBoardLogger,
    histogram_proto,
    png_header,
    run_name,
    tensorflow_bins,
)
from tests.conftest import loaded_by_importing
from tests.runs import hparams_records, session_start

HISTOGRAM_CASES = {
    "normal": np.random.default_rng(0).normal(0, 0.05, size=(100, 3072)).astype(np.float32),
    "positive": np.random.default_rng(1).random(1000) + 3.0,
    "negative": -np.random.default_rng(2).exponential(size=(7, 11)),
    "constant": np.full(10, 0.25),
    "zeros": np.zeros(5),
    "single": np.array([-1e-13]),
}


def read_back(run_dir, **size_guidance) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance=size_guidance)
    acc.Reload()
    return acc


def test_the_bins_are_torchs_default_bins():
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    with tempfile.TemporaryDirectory() as folder:
        writer = torch_tb.SummaryWriter(folder)
        assert np.array_equal(tensorflow_bins(), np.asarray(writer.default_bins))
        writer.close()


@pytest.mark.parametrize("case", HISTOGRAM_CASES)
def test_histogram_proto_equals_torchs(case):
    torch_summary = pytest.importorskip("torch.utils.tensorboard.summary")
    values = HISTOGRAM_CASES[case]
    expected = torch_summary.histogram("h", values, bins=tensorflow_bins().tolist()).value[0].histo
    assert histogram_proto(values) == expected
    assert sum(expected.bucket) == values.size  # the comparison covers every value


def test_histogram_of_nothing_is_refused():
    with pytest.raises(ValueError, match="at least one value"):
        histogram_proto(np.zeros((0, 3)))


def test_scalars_images_histograms_and_hparams_read_back(tmp_path):
    png = fake_png(height=7, width=5)
    values = HISTOGRAM_CASES["normal"]
    logger = TensorBoardLogger(tmp_path)
    logger.scalars(3, {"val/accuracy": 0.5, "train/loss": 1.25})
    logger.image("test/picture", png, 3, *png_header(png)[:2], colorspace=png_header(png)[2])
    logger.histogram("weights/w", values, 4)
    logger.hparams({"optim.lr": 0.1, "model.name": "mlp"}, "t1")
    logger.close()
    acc = read_back(tmp_path, scalars=0, images=0, histograms=0)
    assert [(e.step, e.value) for e in acc.Scalars("val/accuracy")] == [(3, 0.5)]
    (image,) = acc.Images("test/picture")
    assert (image.step, image.height, image.width) == (3, 7, 5)
    assert image.encoded_image_string == png
    (histogram,) = acc.Histograms("weights/w")
    assert histogram.step == 4
    assert histogram.histogram_value.num == values.size
    assert histogram.histogram_value.sum == pytest.approx(values.astype(np.float64).sum())


def test_hparams_are_a_session_start_with_its_trial_id_and_no_experiment(tmp_path):
    """No experiment summary: TensorBoard would take one run's as every run's columns."""
    hparams = {"optim.lr": 0.1, "batch_size": 32, "model.name": "mlp"}
    logger = TensorBoardLogger(tmp_path)
    logger.hparams(hparams, trial_id="outputs/run-1")
    logger.close()
    assert list(hparams_records(tmp_path)) == ["_hparams_/session_start_info"]
    start = session_start(tmp_path)
    assert start.group_name == "outputs/run-1"
    assert set(start.hparams) == set(hparams)
    assert start.hparams["optim.lr"].number_value == pytest.approx(0.1)
    assert start.hparams["model.name"].string_value == "mlp"


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("outputs/torch_mlp/runs/2026-01-02_03-04", "torch_mlp/runs/2026-01-02_03-04"),
        ("outputs/numpy_mlp/multiruns/2026/3_seed=1", "numpy_mlp/multiruns/2026/3_seed=1"),
        ("outputs/a/outputs/b/run", "b/run"),  # the nearest folder named outputs
        ("elsewhere/sweep/0_seed=1", "0_seed=1"),  # no outputs/ above: the folder's own name
    ],
)  # fmt: skip
def test_run_name_is_relative_to_the_nearest_outputs_folder(tmp_path, folder, expected):
    assert run_name(tmp_path / folder) == expected


def test_hparams_trial_id_is_the_run_name_under_outputs(tmp_path):
    """`tensorboard --logdir outputs` shows a Trial ID that starts with the task name."""
    run = tmp_path / "outputs" / "numpy_mlp" / "runs" / "2026-01-02_03-04-05.123456"
    logger = TensorBoardLogger(run)
    logger.hparams({"seed": 1}, run_folder=run)
    logger.close()
    assert session_start(run).group_name == "numpy_mlp/runs/2026-01-02_03-04-05.123456"


def test_text_reads_back_as_markdown(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    logger.text("test/class_accuracy", "| class | accuracy |\n|---|---|\n| cat | 50.0% |", 7)
    logger.close()
    (event,) = read_back(tmp_path, tensors=0).Tensors("test/class_accuracy")
    assert event.step == 7
    assert event.tensor_proto.string_val[0].decode().endswith("| cat | 50.0% |")


def test_identical_configs_without_trial_id_share_a_group(tmp_path):
    """Why train passes trial_id: by default TensorBoard merges runs with equal hparams."""
    groups = []
    for name in ("a", "b"):
        logger = TensorBoardLogger(tmp_path / name)
        logger.hparams({"seed": 1})
        logger.close()
        groups.append(session_start(tmp_path / name).group_name)
    assert groups[0] == groups[1]


def test_png_header_reads_size_and_channels():
    assert png_header(fake_png(height=3, width=9)) == (3, 9, 3)
    with pytest.raises(ValueError, match="not a PNG"):
        png_header(b"GIF89a" + bytes(30))


def fake_png(height: int, width: int) -> bytes:
    """A real RGB PNG, encoded by PIL."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_importing_the_logger_loads_neither_torch_nor_matplotlib():
    watched = ("torch", "matplotlib", "tensorflow")
    assert loaded_by_importing("dlexp.run.tensorboard", watched) == []
