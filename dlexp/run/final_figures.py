"""TensorBoard extras: the final evaluation's figures and per-class accuracy, and histograms.

How to call them (`logger` is a `dlexp.run.tensorboard.TensorBoardLogger`):

    write_final_figures(logger, result.steps, data, backend.last_predictions)
        # after fit(): images `test_figures/confusion_matrix` and `test_figures/misclassified`,
        # and the text `test_figures/class_accuracy` (the val split when there is no test split)
    write_histograms(logger, step, backend.parameter_arrays())
        # every `logger.tensorboard.histogram_freq` steps: `weights/<name>`, `gradients/<name>`

Pillow draws the figures (no matplotlib: its import alone costs more than all of them) and is
imported on the first figure drawn, not on import. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import importlib.util
import io
from pathlib import Path

import numpy as np

from dlexp.data.cifar10 import CLASSES
from dlexp.data.prepare import CIFAR10Data
from dlexp.run.tensorboard import TensorBoardLogger, png_header

MAX_MISCLASSIFIED = 24  # images in the grid
GRID_COLUMNS = 6
TILE_ZOOM = 3  # pixels per image pixel: a 32x32 image shows as 96x96
TILE_GAP = 16  # pixels above each grid row, for its "true → predicted" title
HEADER = 26  # pixels above the grid, for its title
CELL = 40  # pixels per confusion-matrix cell
BLUE_LOW = np.array([247.0, 251.0, 255.0])  # the heat map's 0 (matplotlib's Blues ends)
BLUE_HIGH = np.array([8.0, 48.0, 107.0])  # ... and its 1
# Per-class accuracy is one markdown table in the Text tab: as ten one-point scalar charts it
# led TensorBoard's Time Series and Scalars pages, above the loss and accuracy curves.
# `<split>_figures/...`: a tag group that sorts after the `<split>/` curves, so that TensorBoard's
# first cards stay the loss and accuracy curves (Time Series shows images among the scalars)
FIGURES_GROUP = "{split}_figures"
CLASS_ACCURACY_TAG = FIGURES_GROUP + "/class_accuracy"


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


def class_accuracy_markdown(accuracy: dict[str, float]) -> str:
    """A two-column markdown table: class, accuracy in percent."""
    rows = [f"| {name} | {value:.1%} |" for name, value in accuracy.items()]
    return "\n".join(["| class | accuracy |", "|---|---|", *rows])


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


@functools.cache
def _font(size: int):
    """DejaVu Sans (matplotlib ships it; found without importing matplotlib), else Pillow's
    own; Pillow is imported here, on the first figure drawn."""
    from PIL import ImageFont  # Pillow: only for the final figures

    spec = importlib.util.find_spec("matplotlib")
    for folder in spec.submodule_search_locations if spec else []:
        path = Path(folder, "mpl-data", "fonts", "ttf", "DejaVuSans.ttf")
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def _to_png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # fast: these PNGs are small anyway
    return buffer.getvalue()


def blues(fraction: np.ndarray) -> np.ndarray:
    """Fractions in [0, 1] to RGB uint8 (..., 3), from near-white to dark blue."""
    t = np.clip(fraction, 0, 1)[..., None]
    return np.round(BLUE_LOW + t * (BLUE_HIGH - BLUE_LOW)).astype(np.uint8)


def _vertical_label(text: str, font):
    """`text` turned 90° anticlockwise, read bottom to top (Pillow draws only horizontal text)."""
    from PIL import Image, ImageDraw  # Pillow: only for the final figures

    width = int(font.getlength(text)) + 2
    label = Image.new("L", (width, font.size + 4), 0)
    ImageDraw.Draw(label).text((1, 0), text, fill=255, font=font)
    return label.rotate(90, expand=True)


def confusion_matrix_png(confusion: np.ndarray, names: tuple[str, ...], title: str) -> bytes:
    """A heat map coloured by row fraction, each cell labelled with its count; the y labels
    carry each class's accuracy."""
    from PIL import Image, ImageDraw  # Pillow: only for the final figures

    n = len(names)
    totals = np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fraction = confusion / totals  # rows sum to 1: classes of any size compare
    accuracy = per_class_accuracy(confusion)
    y_labels = [
        f"{name} {acc:.0%}" if np.isfinite(acc) else name
        for name, acc in zip(names, accuracy, strict=True)
    ]
    font, small = _font(12), _font(10)
    left = int(max(font.getlength(t) for t in y_labels)) + 30  # y labels, then "true"
    bottom = int(max(font.getlength(t) for t in names)) + 30  # x labels, then "predicted"
    top, right, side = 30, 10, n * CELL
    image = Image.new("RGB", (left + side + right, top + side + bottom), "white")
    cells = np.repeat(np.repeat(blues(fraction), CELL, axis=0), CELL, axis=1)
    image.paste(Image.fromarray(cells), (left, top))
    draw = ImageDraw.Draw(image)
    draw.text((image.width / 2, 8), title, fill="black", font=font, anchor="mt")
    for (row, col), count in np.ndenumerate(confusion):
        color = "white" if fraction[row, col] > 0.5 else "black"
        centre = (left + col * CELL + CELL / 2, top + row * CELL + CELL / 2)
        draw.text(centre, str(count), fill=color, font=small, anchor="mm")
    for k, (name, label) in enumerate(zip(names, y_labels, strict=True)):
        draw.text(
            (left - 6, top + k * CELL + CELL / 2), label, fill="black", font=font, anchor="rm"
        )
        text = _vertical_label(name, font)
        image.paste("black", (left + k * CELL + (CELL - text.width) // 2, top + side + 6), text)
    draw.text(
        (left + side / 2, image.height - 4), "predicted", fill="black", font=font, anchor="mb"
    )
    axis = _vertical_label("true (class accuracy)", font)
    image.paste("black", (2, top + (side - axis.height) // 2), axis)
    return _to_png(image)


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
    """One mosaic of (N, H, W, C) images in [0, 1], each zoomed TILE_ZOOM times under its own
    title, below the mosaic's title."""
    from PIL import Image, ImageDraw  # Pillow: only for the final figures

    font, small = _font(12), _font(10)
    zoomed = np.repeat(np.repeat(images, TILE_ZOOM, axis=1), TILE_ZOOM, axis=2)
    n, h, w, _ = zoomed.shape
    columns = min(GRID_COLUMNS, n)
    col_gap = max(int(max(small.getlength(t) for t in titles)) + 8 - w, 8)  # room for titles
    grid = tile_grid(zoomed, columns, TILE_GAP, col_gap)
    pixels = np.round(grid * 255).astype(np.uint8)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    image = Image.new("RGB", (pixels.shape[1], pixels.shape[0] + HEADER), "white")
    image.paste(Image.fromarray(pixels), (0, HEADER))
    draw = ImageDraw.Draw(image)
    draw.text((image.width / 2, 6), title, fill="black", font=font, anchor="mt")
    for i, text in enumerate(titles):
        x = (i % columns) * (w + col_gap) + (col_gap + w) / 2  # above the tile's centre
        y = HEADER + (i // columns) * (h + TILE_GAP) + TILE_GAP - 2
        draw.text((x, y), text, fill="black", font=small, anchor="mb")
    return _to_png(image)


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
    when the test split is empty); returns each class's accuracy, as the text table shows it.

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
    by_class = {
        name: float(acc) for name, acc in zip(names, accuracy, strict=True) if np.isfinite(acc)
    }
    logger.text(CLASS_ACCURACY_TAG.format(split=split), class_accuracy_markdown(by_class), step)
    overall = np.trace(confusion) / confusion.sum()
    title = f"{split} confusion matrix, step {step}: {overall:.1%} of {len(chosen)}"
    _write_png(
        logger,
        f"{FIGURES_GROUP.format(split=split)}/confusion_matrix",
        confusion_matrix_png(confusion, names, title),
        step,
    )
    wrong = np.flatnonzero(predicted != chosen.labels)
    if wrong.size:
        shown = wrong[:MAX_MISCLASSIFIED]  # the first ones in split order: the same every run
        images = display_images(chosen.images[shown], data)
        titles = [f"{names[chosen.labels[i]]} → {names[predicted[i]]}" for i in shown]
        title = f"{split}: first {len(shown)} of {wrong.size} misclassified (true → predicted)"
        _write_png(
            logger,
            f"{FIGURES_GROUP.format(split=split)}/misclassified",
            misclassified_png(images, titles, title),
            step,
        )
    return by_class


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
