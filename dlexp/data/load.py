"""`load_cifar10`: locate, read and prepare CIFAR-10, with a cache of the prepared splits.

Preparing (split off the validation images, subtract the mean image or standardize, float32
NCHW) reads every pixel and writes ~0.75 GB: most of a NumPy run's start-up. Its result depends
only on the source files, `validation_size` and `preprocess`, so it is cached as .npy files in a
folder beside the raw array cache, and later runs memory-map them: the page cache serves them,
and parallel sweep jobs share one copy. The arrays are read-only. A missing, damaged or foreign
file only means preparing again.
"""

from __future__ import annotations

import contextlib
import glob
import mmap
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from dlexp.data.cifar10 import (
    RawCIFAR10,
    default_cache_dir,
    load_raw_cifar10,
    raw_cache_path,
)
from dlexp.data.download import OFFICIAL_MD5, OFFICIAL_URL
from dlexp.data.locate import find_batches_dir
from dlexp.data.prepare import (
    IMAGE_SHAPE,
    CIFAR10Data,
    Split,
    check_preparation,
    keep_subsets,
    prepare,
)

PREPARED_VERSION = 1  # the preparation's arithmetic and this layout; bump to invalidate
SPLITS = ("train", "val", "test")
STATS_KEYS = {"mean_image": {"mean_image"}, "standardize": {"channel_mean", "channel_std"}}
STALE_TMP_S = 3600  # a temporary or discarded folder older than this belongs to a dead process


def prepared_cache_path(raw_cache: Path, validation_size: int, preprocess: str) -> Path:
    """The prepared splits' folder, named after the raw cache (which hashes the source files)."""
    name = f"{raw_cache.stem}-prepared{PREPARED_VERSION}-val{validation_size}-{preprocess}"
    return raw_cache.with_name(name)


def _labels(raw: RawCIFAR10, validation_size: int) -> dict[str, np.ndarray]:
    return {
        "train": raw.train_y[validation_size:],
        "val": raw.train_y[:validation_size],
        "test": raw.test_y,
    }


def read_prepared(folder: Path, raw: RawCIFAR10, validation_size: int, preprocess: str):
    """The cached CIFAR10Data for `raw`, or None when the folder is missing or does not fit.

    Each split is its own .npy file, so its data starts at an aligned offset: a float32 array
    mapped at an odd offset (as inside an .npz) is unaligned, and NumPy then multiplies it
    without BLAS, ~100x slower. np.load maps only plain arrays, never pickles.
    """
    if not folder.is_dir() or not 0 <= validation_size < len(raw.train_x):
        return None  # (a validation size that leaves no training image is prepare's error)
    labels = _labels(raw, validation_size)
    try:
        splits = {}
        for name in SPLITS:
            images = np.load(folder / f"{name}_x.npy", mmap_mode="r", allow_pickle=False)
            shape = (len(labels[name]), *IMAGE_SHAPE)
            if images.dtype != np.float32 or images.shape != shape or not images.flags.aligned:
                return None
            splits[name] = Split(images, labels[name])
        with np.load(folder / "stats.npz", allow_pickle=False) as saved:
            stats = {key: saved[key] for key in saved.files}
        if set(stats) != STATS_KEYS.get(preprocess):
            return None
    except Exception:  # any damage (missing file, npy header, sizes) only means preparing again
        return None
    return CIFAR10Data(**splits, preprocess=preprocess, stats=stats)


def write_prepared(folder: Path, data: CIFAR10Data) -> None:
    """Write the splits' images and the statistics into a fresh temporary folder (unique per
    writer), then rename it into place: a reader sees a whole folder or none. Any failure (disk
    full, Ctrl-C, a concurrent writer that won) leaves nothing behind and only costs speed."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f"{folder.name}.", suffix=".tmp"))
    except OSError:
        return  # an unwritable cache folder
    for pattern in ("*.tmp", "*.discarded"):  # what a killed writer or discarder left behind
        for stale in folder.parent.glob(f"{glob.escape(folder.name)}.{pattern}"):
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > STALE_TMP_S:
                    shutil.rmtree(stale, ignore_errors=True)
    try:
        for name in SPLITS:
            np.save(tmp / f"{name}_x.npy", getattr(data, name).images)
        np.savez(tmp / "stats.npz", **data.stats)
        for path in tmp.iterdir():  # the rename publishes the folder: its bytes are on disk first
            with path.open("rb") as f:
                os.fsync(f.fileno())
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the cache from a shared group
        tmp.rename(folder)  # fails if another writer's folder is already there: keep theirs
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(error, OSError):
            raise


def discard(folder: Path) -> None:
    """Move a damaged folder aside under a unique name, then delete it: a concurrent writer's
    fresh folder, renamed into place meanwhile, is never the one deleted."""
    aside = folder.with_name(f"{folder.name}.{os.getpid()}.{uuid.uuid4().hex}.discarded")
    try:
        folder.rename(aside)
    except OSError:
        return  # gone already (another job discarded it) or not ours to move
    shutil.rmtree(aside, ignore_errors=True)


def copy_on_write(images: np.ndarray) -> np.ndarray | None:
    """The same bytes as `images`, a read-only view of a cache file, mapped again copy-on-write:
    writable and private to this process, with no copy until a page is written (the page cache
    serves the rest). None when `images` is not a C-contiguous view of a memory-mapped file."""
    if not isinstance(images, np.memmap) or not images.flags.c_contiguous or not images.size:
        return None
    mapped = getattr(images, "_mmap", None)  # NumPy's mmap.mmap under the file's array
    if mapped is None or images.filename is None:
        return None
    mapping_start = images.offset - images.offset % mmap.ALLOCATIONGRANULARITY  # in the file
    mapping_address = np.frombuffer(mapped, dtype=np.uint8).ctypes.data
    in_file = mapping_start + images.ctypes.data - mapping_address  # the view's first byte
    return np.memmap(images.filename, images.dtype, "c", in_file, images.shape)


def load_cifar10(
    root: str | Path | None = None,
    download: bool = True,
    validation_size: int = 5000,
    preprocess: str = "mean_image",
    url: str = OFFICIAL_URL,
    md5: str | None = OFFICIAL_MD5,
    cache_dir: str | Path | None = "default",
    train_subset: int | None = None,
    eval_subset: int | None = None,
) -> CIFAR10Data:
    """Locate (downloading unless `download=False`), read and prepare CIFAR-10.

    `root=None` is `default_data_root()`; `cache_dir=None` skips both caches (raw arrays and
    prepared splits); the subsets are those of `prepare`. With a cache, the images are
    read-only memory maps.
    """
    check_preparation(validation_size, preprocess, train_subset, eval_subset)  # before any I/O
    batches_dir = find_batches_dir(root, download=download, url=url, md5=md5)
    cache = default_cache_dir() if cache_dir == "default" else cache_dir
    raw = load_raw_cifar10(batches_dir, cache_dir=cache)
    if cache is None:
        return prepare(raw, validation_size, preprocess, train_subset, eval_subset)
    path = prepared_cache_path(
        raw_cache_path(batches_dir, Path(cache)), validation_size, preprocess
    )
    full = read_prepared(path, raw, validation_size, preprocess)
    if full is None:
        if train_subset is not None or eval_subset is not None:  # a small run: no 0.75 GB write
            return prepare(raw, validation_size, preprocess, train_subset, eval_subset)
        discard(path)  # a damaged or foreign folder, if any, would block the rename
        prepared = prepare(raw, validation_size, preprocess)
        write_prepared(path, prepared)
        # Read back what is in place (ours, or a concurrent job's equal folder): every run gets
        # the same read-only memory maps, the first one included. An unwritable cache folder
        # leaves the arrays in memory, as without a cache.
        full = read_prepared(path, raw, validation_size, preprocess)
        full = prepared if full is None else full
    return keep_subsets(full, train_subset, eval_subset)
