"""Read the standard `cifar-10-batches-py` pickles, with a fast array cache."""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import pickle
import struct
import uuid
import zipfile
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
CACHE_VERSION = 1  # the arrays and their .npz layout; bump to invalidate old caches


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
    raise DataError(f"lacks the {key!r} entry of a CIFAR-10 batch")


def _one_line(err: BaseException, limit: int = 80) -> str:
    """`Type: message`, ASCII-escaped and cut to one short line (damaged files give odd text)."""
    text = str(err).splitlines()[0] if str(err) else ""
    text = text.encode("ascii", "backslashreplace").decode()[:limit]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _unpickle(path: Path) -> dict:
    """Load one pickle; every failure becomes a DataError naming `path`."""
    if not path.is_file():
        raise DataError(f"missing CIFAR-10 file {path}")
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except OSError as err:
        raise DataError(f"could not read {path}: {err.strerror or err}") from None
    except Exception as err:  # a damaged pickle can raise almost anything: EOF, Value, Overflow...
        raise DataError(f"{path} is not a readable CIFAR-10 pickle ({_one_line(err)})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path} holds a {type(batch).__name__}, not a CIFAR-10 batch dict")
    return batch


def _labels(path: Path, labels, n: int) -> np.ndarray:
    """The labels as int64 (n,), checked to be class indices."""
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError, OverflowError):
        raise DataError(f"{path}: 'labels' must be {n} integers") from None
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: 'labels' must be {n} integers, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        found = f"found {labels.min()}..{labels.max()}"
        raise DataError(f"{path}: labels must lie in 0..{len(CLASSES) - 1}, {found}")
    return labels.astype(np.int64)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file into (uint8 (N, 3072), int64 (N,))."""
    batch = _unpickle(path)
    try:
        data, labels = _get(batch, "data"), _get(batch, "labels")
    except DataError as err:
        raise DataError(f"{path} {err}") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        kind = getattr(data, "dtype", type(data).__name__)
        raise DataError(f"{path}: 'data' must be a uint8 array, got {kind}")
    if data.ndim != 2 or data.shape[1] != PIXELS:
        raise DataError(f"{path}: 'data' must have shape (N, {PIXELS}), got {data.shape}")
    return data, _labels(path, labels, data.shape[0])


def raw_cache_path(batches_dir: Path, cache_dir: Path) -> Path:
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


ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then name and extra-field lengths
READ_NPY_HEADER = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _member_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, mapped: mmap.mmap):
    """One stored (uncompressed) .npy member of an .npz as a read-only view of the mapping."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{info.filename} is compressed")
    start = info.header_offset
    signature, name_len, extra_len = ZIP_LOCAL_HEADER.unpack_from(mapped, start)
    if signature != b"PK\x03\x04":
        raise ValueError(f"{info.filename}: no local file header")
    with archive.open(info) as member:  # reads only the small .npy header
        version = np.lib.format.read_magic(member)
        read_header = READ_NPY_HEADER.get(version)
        if read_header is None:
            raise ValueError(f"{info.filename}: .npy format {version} not mapped")
        shape, fortran, dtype = read_header(member)
        header_len = member.tell()
    if dtype.hasobject or fortran:
        raise ValueError(f"{info.filename}: not a plain C-ordered array")
    offset = start + ZIP_LOCAL_HEADER.size + name_len + extra_len + header_len
    count = int(np.prod(shape))
    if header_len + count * dtype.itemsize != info.file_size:
        raise ValueError(f"{info.filename}: header and size disagree")
    return np.frombuffer(mapped, dtype, count, offset).reshape(shape)


def _map_npz(cache: Path) -> dict[str, np.ndarray]:
    """Every array of an uncompressed .npz, memory-mapped: no copy and no CRC pass.

    np.load would read and CRC-check all 185 MB; mapped, the page cache serves the bytes as the
    preprocessing first reads them, and the mapping closes with the last array that views it.
    """
    with cache.open("rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    with zipfile.ZipFile(cache) as archive:
        return {
            info.filename.removesuffix(".npy"): _member_array(archive, info, mapped)
            for info in archive.infolist()
        }


def _read_cache(cache: Path) -> RawCIFAR10 | None:
    """The cached arrays, or None when the file is missing or damaged (the caller rebuilds it)."""
    if not cache.is_file():
        return None
    try:
        arrays = _map_npz(cache)
        labels = {k: np.array(v) for k, v in arrays.items() if k.endswith("_y")}  # small: owned
        raw = RawCIFAR10(**{**arrays, **labels})
    except Exception:  # any damage (zip, npy header, sizes, keys) only means a rebuild
        return None
    return raw if _well_formed(raw) else None


def _well_formed(raw: RawCIFAR10) -> bool:
    """uint8 (N, 3072) images with one label each, as `read_batch` returns them."""
    pairs = ((raw.train_x, raw.train_y), (raw.test_x, raw.test_y))
    return all(
        x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == PIXELS and y.shape == x.shape[:1]
        for x, y in pairs
    )


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed .npz atomically: a crash never leaves a half-written cache behind,
    and an unwritable cache folder only costs speed."""
    tmp = path.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex}.tmp.npz")  # unique per writer
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        tmp.replace(path)
    except BaseException as error:  # Ctrl-C included: no half-written file stays behind
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if not isinstance(error, OSError):
            raise


def load_raw_cifar10(batches_dir: Path, cache_dir: Path | None = None) -> RawCIFAR10:
    """Read all six batches; reuse or write an uncompressed array cache when `cache_dir` is set."""
    batches_dir = Path(batches_dir)
    for name in (*TRAIN_FILES, TEST_FILE):
        if not (batches_dir / name).is_file():
            raise DataError(f"missing CIFAR-10 file {batches_dir / name}")
    if cache_dir is None:
        return _read_all(batches_dir)
    cache = raw_cache_path(batches_dir, Path(cache_dir))
    raw = _read_cache(cache)
    if raw is None:
        raw = _read_all(batches_dir)
        _write_npz(cache, vars(raw))
    return raw
