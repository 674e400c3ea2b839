"""TensorBoard extras: the final evaluation's figures and per-class accuracy, and histograms.

How to call them (`logger` is a `dlexp.run.tensorboard.TensorBoardLogger`):

    write_final_figures(logger, result.steps, data, backend.last_predictions)
        # after fit(): image `test/confusion_matrix`, scalars `class_accuracy/test/<class>`,
        # image `test/misclassified` (the val split when there is no test split)
    write_histograms(logger, step, backend.parameter_arrays())
        # every `logger.tensorboard.histogram_freq` steps: `weights/<name>`, `gradients/<name>`

matplotlib is imported on the first figure drawn, not on import: runs that draw none never
pay for it. Nothing here imports torch.
"""

from __future__ import annotations

import io

import numpy as np

from dlexp.data.cifar10 import CLASSES
from dlexp.data.prepare import CIFAR10Data
from dlexp.run.tensorboard import TensorBoardLogger, png_header

DPI = 100  # figure pixels per inch: small PNGs, fast to draw
MAX_MISCLASSIFIED = 24  # images in the grid
GRID_COLUMNS = 6
TILE_GAP = 10  # image pixels between grid rows, room for a "true → predicted" title
TILE_ZOOM = 2.7  # figure pixels per image pixel: a 32x32 image shows as 86x86
HEADER_INCHES = 0.35  # above the grid, for its title
# Scalar charts group by their tag's first component: this keeps ten one-point charts in a
# section of their own instead of pushing test/loss below them in the "test" section.
CLASS_ACCURACY_TAG = "class_accuracy/{split}/{name}"


def class_names() -> tuple[str, ...]:
    """CIFAR-10's ten class names, in label order."""
    return CLASSES


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true label, column = predicted label."""
    flat = np.asarray(labels, dtype=np.int64) * n_classes + np.asarray(predictions, np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """The fraction of each true class predicted right (n_classes,); NaN for an absent class."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / totals, np.nan)


def display_images(images: np.ndarray, data: CIFAR10Data) -> np.ndarray:
    """Preprocessed (N, C, H, W) back to viewable (N, H, W, C) in [0, 1]."""
    if "mean_image" in data.stats:  # the mean image was subtracted on the 0-255 scale
        pixels = (images + data.stats["mean_image"]) / 255
    elif "channel_mean" in data.stats:  # standardised: stats on the 0-1 scale
        mean, std = (data.stats[k].reshape(-1, 1, 1) for k in ("channel_mean", "channel_std"))
        pixels = images * std + mean
    else:  # unknown preprocessing: stretch each image to its own range
        low = images.min(axis=(1, 2, 3), keepdims=True)
        pixels = (images - low) / np.maximum(images.max(axis=(1, 2, 3), keepdims=True) - low, 1e-8)
    return np.clip(pixels, 0, 1).transpose(0, 2, 3, 1)


def _figure(width: float, height: float):
    """A bare matplotlib Figure (inches), imported on first use. No pyplot: no global state to
    clean up, and the backend of a notebook that calls train() stays as it is."""
    from matplotlib.figure import Figure  # matplotlib: only for the final figures

    return Figure(figsize=(width, height), dpi=DPI)


def _to_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)  # Agg renders PNGs whatever the backend
    return buffer.getvalue()


def confusion_matrix_png(confusion: np.ndarray, names: tuple[str, ...], title: str) -> bytes:
    """A heat map coloured by row fraction, each cell labelled with its count; the y labels
    carry each class's accuracy."""
    n = len(names)
    totals = np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fraction = confusion / totals  # rows sum to 1: classes of any size compare
    accuracy = per_class_accuracy(confusion)
    fig = _figure(6.4, 5.6)
    ax = fig.subplots()
    ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    for (row, col), count in np.ndenumerate(confusion):
        color = "white" if fraction[row, col] > 0.5 else "black"
        ax.text(col, row, str(count), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=8)
    y_labels = [
        f"{name} {acc:.0%}" if np.isfinite(acc) else name
        for name, acc in zip(names, accuracy, strict=True)
    ]
    ax.set_yticks(range(n), y_labels, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true (class accuracy)", title=title)
    fig.subplots_adjust(left=0.2, right=0.98, bottom=0.17, top=0.94)  # fixed: no layout pass
    return _to_png(fig)


def tile_grid(images: np.ndarray, columns: int, row_gap: int, col_gap: int) -> np.ndarray:
    """(N, H, W, C) images to one white mosaic: a `row_gap` strip above each row of tiles,
    `col_gap` between columns (half of it at either edge)."""
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.ones((rows * (h + row_gap), columns * (w + col_gap), c), dtype=images.dtype)
    for i, image in enumerate(images):  # at most MAX_MISCLASSIFIED tiles
        top = (i // columns) * (h + row_gap) + row_gap
        left = (i % columns) * (w + col_gap) + col_gap // 2  # centred in its column
        grid[top : top + h, left : left + w] = image
    return grid


def misclassified_png(images: np.ndarray, titles: list[str], title: str) -> bytes:
    """One mosaic of (N, H, W, C) images in [0, 1], each under its own title; one Axes only, as
    each extra Axes costs matplotlib tens of milliseconds."""
    n, h, w, _ = images.shape
    columns = min(GRID_COLUMNS, n)
    row_gap, col_gap = TILE_GAP, w // 2  # room for a title above, and for its width
    grid = tile_grid(images, columns, row_gap, col_gap)
    width, height = (side * TILE_ZOOM / DPI for side in (grid.shape[1], grid.shape[0]))
    fig = _figure(width, height + HEADER_INCHES)
    ax = fig.add_axes((0, 0, 1, height / (height + HEADER_INCHES)))  # fixed: no layout pass
    ax.imshow(grid, interpolation="nearest")
    for i, text in enumerate(titles):
        x = (i % columns) * (w + col_gap) + (col_gap + w) / 2  # above the tile's centre
        y = (i // columns) * (h + row_gap) + row_gap - 1
        ax.text(x, y, text, ha="center", va="bottom", fontsize=6.5)
    ax.set_axis_off()
    fig.suptitle(title, fontsize=9, y=1 - 0.1 / (height + HEADER_INCHES))
    return _to_png(fig)


def _write_png(logger: TensorBoardLogger, tag: str, png: bytes, step: int) -> None:
    height, width, channels = png_header(png)
    logger.image(tag, png, step, height, width, colorspace=channels)


def write_final_figures(
    logger: TensorBoardLogger,
    step: int,
    data: CIFAR10Data,
    predictions: dict[str, np.ndarray],
) -> dict[str, float]:
    """The confusion matrix, per-class accuracy and misclassified images of the test split (val
    when the test split is empty); returns the class-accuracy scalars written.

    Args:
        predictions: split -> predicted labels (N,) of its last evaluation
            (`backend.last_predictions`); nothing is written without them.
    """
    split = "test" if len(data.test) else "val"
    chosen = getattr(data, split)
    predicted = predictions.get(split)
    if predicted is None or len(chosen) == 0:
        return {}
    if len(predicted) != len(chosen):
        raise ValueError(f"{len(predicted)} {split} predictions for {len(chosen)} images")
    names = class_names()
    confusion = confusion_matrix(chosen.labels, predicted, len(names))
    accuracy = per_class_accuracy(confusion)
    scalars = {
        CLASS_ACCURACY_TAG.format(split=split, name=name): float(acc)
        for name, acc in zip(names, accuracy, strict=True)
        if np.isfinite(acc)
    }
    logger.scalars(step, scalars)
    overall = np.trace(confusion) / confusion.sum()
    title = f"{split} confusion matrix, step {step}: {overall:.1%} of {len(chosen)}"
    _write_png(
        logger, f"{split}/confusion_matrix", confusion_matrix_png(confusion, names, title), step
    )
    wrong = np.flatnonzero(predicted != chosen.labels)
    if wrong.size:
        shown = wrong[:MAX_MISCLASSIFIED]  # the first ones in split order: the same every run
        images = display_images(chosen.images[shown], data)
        titles = [f"{names[chosen.labels[i]]} → {names[predicted[i]]}" for i in shown]
        title = f"{split}: first {len(shown)} of {wrong.size} misclassified (true → predicted)"
        _write_png(logger, f"{split}/misclassified", misclassified_png(images, titles, title), step)
    return scalars


def write_histograms(
    logger: TensorBoardLogger,
    step: int,
    parameter_arrays: dict[str, tuple[np.ndarray, np.ndarray | None]],
) -> None:
    """`weights/<name>` for every parameter, `gradients/<name>` for those with a gradient.

    Args:
        parameter_arrays: name -> (values, gradient or None) (`backend.parameter_arrays()`).
    """
    for name, (values, grad) in parameter_arrays.items():
        logger.histogram(f"weights/{name}", values, step)
        if grad is not None:
            logger.histogram(f"gradients/{name}", grad, step)
