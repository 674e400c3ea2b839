"""The final evaluation's figures and scalars, and the histograms, read back from the event file."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlexp.data import load_cifar10, load_raw_cifar10
from dlexp.data.prepare import CIFAR10Data, Split
from dlexp.run.final_figures import (
    class_names,
    confusion_matrix,
    display_images,
    per_class_accuracy,
    write_final_figures,
    write_histograms,
)
from dlexp.run.tensorboard import TensorBoardLogger
from tests.conftest import loaded_by_importing

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_class_names_are_cifar10s():
    assert class_names() == (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    )  # fmt: skip


def test_confusion_matrix_by_hand():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    expected = [
        [1, 1, 0, 0],  # true 0: one right, one taken for 1
        [0, 1, 0, 0],
        [1, 0, 2, 0],  # true 2: two right, one taken for 0
        [0, 0, 0, 0],  # class 3 never occurs
    ]
    confusion = confusion_matrix(labels, predicted, 4)
    np.testing.assert_array_equal(confusion, expected)
    assert confusion.sum() == len(labels)


def test_per_class_accuracy_by_hand():
    confusion = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_allclose(per_class_accuracy(confusion), [0.5, 1.0, 2 / 3])
    absent = per_class_accuracy(np.array([[3, 1], [0, 0]]))
    assert absent[0] == 0.75 and np.isnan(absent[1])


@pytest.mark.parametrize("preprocess", ["mean_image", "standardize"])
def test_display_images_undo_the_preprocessing(tiny_cifar, preprocess):
    data = load_cifar10(tiny_cifar, download=False, validation_size=50, preprocess=preprocess)
    raw = load_raw_cifar10(tiny_cifar / "cifar-10-batches-py")
    pixels = raw.test_x[:5].reshape(5, 3, 32, 32).transpose(0, 2, 3, 1) / 255  # (N, H, W, C)
    np.testing.assert_allclose(display_images(data.test.images[:5], data), pixels, atol=1e-5)


def test_display_images_without_stats_stretch_each_image():
    images = np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32)
    data = CIFAR10Data(Split(images, np.zeros(2)), *[Split(images[:0], np.zeros(0))] * 2, "?")
    shown = display_images(images, data)
    assert shown.shape == (2, 4, 4, 3)
    assert shown.min(axis=(1, 2, 3)).tolist() == [0, 0] and shown.max() == pytest.approx(1)


@pytest.fixture
def tiny_data(tiny_cifar):
    return load_cifar10(tiny_cifar, download=False, validation_size=50)


def wrong_on_some(labels: np.ndarray, every: int) -> np.ndarray:
    """Predictions that are right except on every `every`-th image (shifted one class up)."""
    predicted = labels.copy()
    predicted[::every] = (labels[::every] + 1) % 10
    return predicted


def read_back(run_dir) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def decoded_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    assert png[:8] == PNG_SIGNATURE
    with Image.open(io.BytesIO(png)) as image:
        return image.height, image.width


def test_final_figures_read_back_from_the_event_file(tmp_path, tiny_data):
    labels = tiny_data.test.labels  # 50 images, 5 of each class
    predicted = wrong_on_some(labels, every=4)  # images 0, 4, ..., 48: 13 wrong
    logger = TensorBoardLogger(tmp_path)
    written = write_final_figures(logger, 20, tiny_data, {"test": predicted, "val": labels})
    logger.close()
    acc = read_back(tmp_path)
    images = {"test_figures/confusion_matrix", "test_figures/misclassified"}
    assert set(acc.Tags()["images"]) == images
    for tag in acc.Tags()["images"]:
        (event,) = acc.Images(tag)
        assert event.step == 20
        assert decoded_size(event.encoded_image_string) == (event.height, event.width)
        assert event.height > 200 and event.width > 200
    right = predicted == labels
    assert acc.Tags()["scalars"] == []  # no one-point charts ahead of the curves
    (event,) = acc.Tensors("test_figures/class_accuracy")
    table = event.tensor_proto.string_val[0].decode()
    assert event.step == 20 and table.startswith("| class | accuracy |")
    for k, name in enumerate(class_names()):
        expected = right[labels == k].mean()
        assert written[name] == pytest.approx(expected)
        assert f"| {name} | {expected:.1%} |" in table.splitlines()
    assert written["airplane"] == pytest.approx(2 / 5)  # 0, 20, 40 of 0..40 wrong


def test_no_test_split_falls_back_to_val(tmp_path, tiny_data):
    empty = Split(tiny_data.test.images[:0], tiny_data.test.labels[:0])
    data = CIFAR10Data(tiny_data.train, tiny_data.val, empty, "mean_image", tiny_data.stats)
    logger = TensorBoardLogger(tmp_path)
    written = write_final_figures(logger, 7, data, {"val": wrong_on_some(data.val.labels, 2)})
    logger.close()
    acc = read_back(tmp_path)
    images = {"val_figures/confusion_matrix", "val_figures/misclassified"}
    assert set(acc.Tags()["images"]) == images
    assert written and "val_figures/class_accuracy" in acc.Tags()["tensors"]


def test_all_right_draws_no_misclassified_grid(tmp_path, tiny_data):
    logger = TensorBoardLogger(tmp_path)
    written = write_final_figures(logger, 1, tiny_data, {"test": tiny_data.test.labels})
    logger.close()
    assert read_back(tmp_path).Tags()["images"] == ["test_figures/confusion_matrix"]
    assert set(written.values()) == {1.0}


def test_predictions_of_the_wrong_length_are_refused(tmp_path, tiny_data):
    logger = TensorBoardLogger(tmp_path)
    with pytest.raises(ValueError, match="3 test predictions for 50 images"):
        write_final_figures(logger, 1, tiny_data, {"test": np.zeros(3, np.int64)})
    logger.close()


def test_histograms_of_weights_and_gradients(tmp_path):
    rng = np.random.default_rng(0)
    weight, grad, bias = rng.normal(size=(10, 30)), rng.normal(size=(10, 30)), rng.normal(size=10)
    logger = TensorBoardLogger(tmp_path)
    write_histograms(logger, 5, {"linear0.weight": (weight, grad), "linear0.bias": (bias, None)})
    logger.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"histograms": 0})
    acc.Reload()
    assert set(acc.Tags()["histograms"]) == {
        "weights/linear0.weight",
        "gradients/linear0.weight",
        "weights/linear0.bias",  # no gradient, no gradient histogram
    }
    for tag, values in [
        ("weights/linear0.weight", weight),
        ("gradients/linear0.weight", grad),
        ("weights/linear0.bias", bias),
    ]:
        ((event),) = acc.Histograms(tag)
        assert event.step == 5
        histogram = event.histogram_value
        assert histogram.num == values.size and sum(histogram.bucket) == values.size
        assert histogram.sum == pytest.approx(values.sum())
        assert (histogram.min, histogram.max) == (values.min(), values.max())


def test_importing_the_figures_loads_neither_torch_nor_matplotlib():
    """matplotlib loads when the first figure is drawn, not at a run's start-up."""
    watched = ("torch", "matplotlib", "PIL")
    assert loaded_by_importing("dlexp.run.final_figures", watched) == []


def test_drawing_the_figures_never_imports_matplotlib(tmp_path):
    """Pillow draws them: importing matplotlib alone cost more than the 0.3 s they may take."""
    code = (
        "import sys, numpy as np\n"
        "from dlexp.run.final_figures import confusion_matrix_png, misclassified_png\n"
        "confusion_matrix_png(np.eye(3, dtype=int), ('a', 'b', 'c'), 't')\n"
        "misclassified_png(np.zeros((2, 4, 4, 3)), ['a → b', 'b → c'], 't')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'torch')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
