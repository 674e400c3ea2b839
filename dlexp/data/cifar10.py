"""Read the standard `cifar-10-batches-py` pickles, with a fast array cache."""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlexp.errors import DataError

CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
PIXELS = 3 * 32 * 32
CACHE_VERSION = 1


@dataclass
class RawCIFAR10:
    """Unprocessed CIFAR-10: uint8 images (N, 3072) in R, G, B planes and int64 labels (N,)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def _get(batch: dict, key: str):
    # Pickles written by Python 2 load with bytes keys, others with str keys.
    if key in batch:
        return batch[key]
    if key.encode() in batch:
        return batch[key.encode()]
    raise KeyError(key)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file into (uint8 (N, 3072), int64 (N,))."""
    if not path.is_file():
        raise DataError(f"missing CIFAR-10 file {path}")
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data, labels = _get(batch, "data"), _get(batch, "labels")
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as err:
        raise DataError(f"{path} is not a readable CIFAR-10 pickle ({err or 'truncated'})") from None
    except (KeyError, TypeError):
        raise DataError(f"{path} lacks the 'data' and 'labels' entries of a CIFAR-10 batch") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        kind = getattr(data, "dtype", type(data).__name__)
        raise DataError(f"{path}: 'data' must be a uint8 array, got {kind}")
    if data.ndim != 2 or data.shape[1] != PIXELS:
        raise DataError(f"{path}: 'data' must have shape (N, {PIXELS}), got {data.shape}")
    labels = np.asarray(labels)
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: 'labels' must be {data.shape[0]} integers, got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataError(f"{path}: labels must lie in 0..{len(CLASSES) - 1}")
    return data, labels.astype(np.int64)


def _cache_path(batches_dir: Path, cache_dir: Path) -> Path:
    """A cache file keyed by the source files' paths, sizes and modification times."""
    key = hashlib.sha1(str(CACHE_VERSION).encode())
    for name in (*TRAIN_FILES, TEST_FILE):
        st = (batches_dir / name).stat()
        key.update(f"{(batches_dir / name).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return cache_dir / f"cifar10-{key.hexdigest()[:16]}.npz"


def default_cache_dir() -> Path:
    """`$DLEXP_CACHE`, else `$XDG_CACHE_HOME/dlexp`, else `~/.cache/dlexp`."""
    if os.environ.get("DLEXP_CACHE"):
        return Path(os.environ["DLEXP_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlexp"


def _read_all(batches_dir: Path) -> RawCIFAR10:
    train = [read_batch(batches_dir / name) for name in TRAIN_FILES]
    test_x, test_y = read_batch(batches_dir / TEST_FILE)
    return RawCIFAR10(
        train_x=np.concatenate([x for x, _ in train]),
        train_y=np.concatenate([y for _, y in train]),
        test_x=test_x,
        test_y=test_y,
    )


def load_raw_cifar10(batches_dir: Path, cache_dir: Path | None = None) -> RawCIFAR10:
    """Read all six batches; reuse or write an uncompressed array cache when `cache_dir` is set."""
    batches_dir = Path(batches_dir)
    for name in (*TRAIN_FILES, TEST_FILE):
        if not (batches_dir / name).is_file():
            raise DataError(f"missing CIFAR-10 file {batches_dir / name}")
    if cache_dir is None:
        return _read_all(batches_dir)
    cache = _cache_path(batches_dir, Path(cache_dir))
    if cache.is_file():
        try:
            with np.load(cache) as arrays:
                return RawCIFAR10(**{k: arrays[k] for k in arrays.files})
        except (OSError, ValueError, KeyError, TypeError):
            pass  # A damaged cache is rebuilt below.
    raw = _read_all(batches_dir)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **vars(raw))
        tmp.replace(cache)
    except OSError:
        pass  # An unwritable cache only costs speed.
    return raw
