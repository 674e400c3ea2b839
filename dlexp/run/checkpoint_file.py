"""Checkpoint files: a run's whole state as one safetensors file; atomic, checksummed, no pickle.

The arrays are the file's tensors, named by their place in the state (`backend/model/...`). The
rest of the state goes in the file's metadata, a dict of strings, so any safetensors reader
opens a checkpoint (docs/runs.md):

    format          "dlexp-checkpoint"
    format_version  "2"
    meta            JSON: backend, state (the tree that names the arrays), loop, shapes, dtypes
    sha256          of `meta` (its UTF-8 bytes), then of each array's bytes (C order, little
                    endian) in the order meta["shapes"] lists them

safetensors parses without pickle, and the checksum is compared before anything is restored.
Files in the earlier format (`last.ckpt`) still load (dlexp.run.legacy_checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from dlexp.errors import DlexpError
from dlexp.run import legacy_checkpoint
from dlexp.run.atomic_write import atomic_path
from dlexp.run.state_tree import array_layout, first_mismatch, flatten_state, unflatten_state

FORMAT, FORMAT_VERSION = "dlexp-checkpoint", 2
BACKENDS = ("numpy", "torch")
MAX_HEADER = 100_000_000  # bytes: safetensors' own limit; a state's header is ~20 kB


class CheckpointError(DlexpError):
    """A checkpoint that is missing, damaged, not ours, or not this run's."""


def _fail(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: {why}")


def _plain_scalar(obj):
    """A NumPy scalar in the caller's meta (e.g. a metric) as a Python number."""
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"a checkpoint's metadata cannot hold a {type(obj).__name__}")


def _byte_view(array) -> np.ndarray:
    """A C-contiguous array's or CPU tensor's bytes as flat uint8, without a copy."""
    if isinstance(array, np.ndarray):
        return array.reshape(-1).view(np.uint8)
    import torch  # a tensor: torch is loaded already

    return array.reshape(-1).view(torch.uint8).numpy()  # also bfloat16, which NumPy lacks


def _c_order(array: np.ndarray) -> np.ndarray:
    """The array itself when C-contiguous, else a C-order copy (0-d stays 0-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


def checksum(meta_json: str, arrays: list) -> str:
    """sha256 of the meta JSON, then of each array's bytes, in the order given."""
    digest = hashlib.sha256(meta_json.encode())
    for array in arrays:
        digest.update(_byte_view(array))
    return digest.hexdigest()


def _numpy_file(arrays: dict) -> tuple[dict, Callable]:
    """(arrays as stored, their writer) for a NumPy run: torch is never imported."""
    if not all(isinstance(a, np.ndarray) for a in arrays.values()):
        raise TypeError("a NumPy checkpoint holds NumPy arrays only")
    # safetensors writes an array's memory as it lies: a transposed weight must be made C order
    return {k: _c_order(a) for k, a in arrays.items()}, safetensors.numpy.save_file


def _torch_file(arrays: dict) -> tuple[dict, Callable]:
    """(tensors as stored: CPU, contiguous, no two sharing memory, and their writer)."""
    import torch  # torch: never loaded by NumPy runs
    from safetensors.torch import save_file  # (as torch)

    tensors, storages = {}, set()
    for key, a in arrays.items():
        t = torch.from_numpy(_c_order(a)) if isinstance(a, np.ndarray) else a
        t = t.detach().to("cpu").contiguous()
        if t.numel() and t.untyped_storage().data_ptr() in storages:
            t = t.clone()  # tied weights: safetensors refuses tensors that share memory
        storages.add(t.untyped_storage().data_ptr())
        tensors[key] = t
    return tensors, save_file


def save_checkpoint(path: str | Path, arrays: dict, meta: dict) -> Path:
    """Write arrays + meta (meta["backend"] picks NumPy or torch tensors) atomically to `path`."""
    path = Path(path)
    if meta.get("backend") not in BACKENDS:
        raise ValueError(f"meta['backend'] must be one of {BACKENDS}, got {meta.get('backend')!r}")
    layout = array_layout(arrays)
    meta = {
        **meta,
        "format_version": FORMAT_VERSION,
        "shapes": {k: shape for k, (shape, _) in layout.items()},  # what the checksum covers
        "dtypes": {k: dtype for k, (_, dtype) in layout.items()},
        "numpy_arrays": [k for k, a in arrays.items() if isinstance(a, np.ndarray)],
    }
    stored, write = (_numpy_file if meta["backend"] == "numpy" else _torch_file)(arrays)
    meta_json = json.dumps(meta, separators=(",", ":"), default=_plain_scalar)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "meta": meta_json,
        "sha256": checksum(meta_json, list(stored.values())),
    }
    with atomic_path(path) as tmp:
        write(stored, tmp, metadata=metadata)
    return path


def _read_metadata(path: Path) -> dict:
    """The safetensors header's metadata, once the file's size matches its header."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)  # the header's length, little endian
        length = int.from_bytes(prefix, "little")
        first = f.read(1)  # a safetensors header is a JSON object
        if len(prefix) == 8 and (first not in (b"", b"{") or not 2 <= length <= MAX_HEADER):
            raise _fail(path, "not a dlexp checkpoint (not a safetensors file)")
        header = first + f.read(length - 1) if first else b""
    if len(prefix) < 8 or len(header) < length:
        raise _fail(path, "truncated inside its header")
    try:
        entries = json.loads(header)
        metadata = entries.pop("__metadata__", None)
        expected = 8 + length + max((e["data_offsets"][1] for e in entries.values()), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise _fail(path, "corrupt (its safetensors header does not parse)") from None
    if size != expected:
        got = f"{size} of {expected} bytes"
        raise _fail(path, f"truncated ({got})" if size < expected else f"too long ({got})")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise _fail(path, "not a dlexp checkpoint (a safetensors file without dlexp's metadata)")
    return metadata


def _read_meta(path: Path, metadata: dict) -> dict:
    """The run's meta from the file's metadata, in a format version this dlexp reads."""
    version = metadata.get("format_version")
    if version is None:
        raise _fail(path, "corrupt (no format version in its metadata)")
    if version != str(FORMAT_VERSION):
        raise _fail(path, f"format version {version}; this dlexp reads versions 1 and 2")
    try:
        meta = json.loads(metadata["meta"])
    except (KeyError, TypeError, ValueError):
        raise _fail(path, "corrupt (unreadable metadata)") from None
    if not isinstance(meta, dict):
        raise _fail(path, "corrupt (unreadable metadata)")
    return meta


def _read_arrays(path: Path, meta: dict) -> dict:
    """The file's tensors: NumPy arrays for a NumPy run, torch tensors (on the CPU) for torch."""
    try:
        if meta["backend"] == "numpy":
            return safetensors.numpy.load_file(path)
        from safetensors.torch import load_file  # loads torch: only a torch run's file needs it

        numpy_arrays = set(meta.get("numpy_arrays", ()))  # stored as tensors, given as NumPy
        return {
            k: t.numpy() if k in numpy_arrays else t
            for k, t in load_file(path, device="cpu").items()
        }
    except (SafetensorError, OSError, RuntimeError, KeyError, TypeError, ValueError) as err:
        msg = " ".join(str(err).split())[:200]
        raise _fail(path, f"unreadable arrays ({msg})") from None


def _verified_order(path: Path, arrays: dict, meta: dict) -> list[str]:
    """The arrays' names in the checksum's order, once their shapes and dtypes match the meta
    (which the checksum covers; the safetensors header it does not)."""
    try:
        saved = {k: [shape, meta["dtypes"][k]] for k, shape in meta["shapes"].items()}
    except (AttributeError, KeyError, TypeError):
        raise _fail(path, "corrupt (its metadata lists no arrays)") from None
    if array_layout(arrays) != saved:
        raise _fail(path, "its arrays disagree with its metadata")
    return list(saved)


def load_checkpoint(path: str | Path, backend: str | None = None) -> tuple[dict, dict]:
    """(arrays, meta) from a checkpoint file of either format; any fault is one line."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file" if not path.exists() else "not a file")
    try:
        with path.open("rb") as f:
            legacy = f.read(len(legacy_checkpoint.MAGIC)) == legacy_checkpoint.MAGIC
        if legacy:
            return _load_legacy(path, backend)
        metadata = _read_metadata(path)
    except OSError as err:  # e.g. no permission to read it
        raise _fail(path, f"cannot be read ({err.strerror})") from None
    meta = _read_meta(path, metadata)
    _check_backend(path, meta, backend)
    arrays = _read_arrays(path, meta)
    order = _verified_order(path, arrays, meta)
    if checksum(metadata["meta"], [arrays[k] for k in order]) != metadata.get("sha256"):
        raise _fail(path, "checksum mismatch (the file is corrupt)")
    return arrays, meta


def _check_backend(path: Path, meta: dict, backend: str | None) -> None:
    """Before any array is read: a NumPy run never loads torch to refuse a torch file."""
    if meta.get("backend") not in BACKENDS:
        raise _fail(path, "not a dlexp checkpoint (no backend in its metadata)")
    if backend is not None and meta["backend"] != backend:
        raise _fail(path, f"a {meta['backend']} checkpoint; this run uses {backend}")


def _load_legacy(path: Path, backend: str | None) -> tuple[dict, dict]:
    """(arrays, meta) of a file in the format before safetensors (`last.ckpt`)."""
    try:
        meta, payload = legacy_checkpoint.read_verified(memoryview(path.read_bytes()))
    except ValueError as err:
        raise _fail(path, str(err)) from None
    _check_backend(path, meta, backend)
    try:
        arrays = legacy_checkpoint.payload_arrays(meta, payload)
    except Exception as err:  # a forged payload with a matching checksum, or a bug
        msg = " ".join(str(err).split())[:200]
        raise _fail(path, f"unreadable payload ({msg})") from None
    if sorted(arrays) != sorted(meta.get("shapes", {})):
        raise _fail(path, "its arrays disagree with its metadata")
    return arrays, meta


def backend_state(backend, sampler, generators: dict | None = None) -> tuple[dict, dict]:
    """(arrays, meta) of all a run needs to continue bit-exactly; add loop keys to meta."""
    state = {
        "backend": backend.state_dict(),
        "sampler": sampler.state_dict(),
        "generators": {n: g.bit_generator.state for n, g in (generators or {}).items()},
        "python_random": random.getstate(),
    }
    arrays, tree = flatten_state(state)
    return arrays, {"backend": backend.kind, "state": tree}


def restore_backend_state(
    backend, sampler, arrays: dict, meta: dict, generators: dict | None = None,
    source: str = "checkpoint",
) -> None:  # fmt: skip
    """Load backend_state()'s (arrays, meta) into freshly built objects, or refuse in one line."""
    if meta.get("backend") != backend.kind:
        raise CheckpointError(
            f"{source}: a {meta.get('backend')} checkpoint; this run uses {backend.kind}"
        )
    current, _ = backend_state(backend, sampler, generators)
    why = first_mismatch(array_layout(arrays), array_layout(current), prefix="backend/model/")
    if why:
        raise CheckpointError(f"{source} holds another model: {why}")
    try:
        state = unflatten_state(meta["state"], arrays)
        backend.load_state_dict(state["backend"])
        sampler.load_state_dict(state["sampler"])
        for name, generator in (generators or {}).items():
            generator.bit_generator.state = state["generators"][name]
        random.setstate(state["python_random"])
    except KeyError as err:
        raise CheckpointError(f"{source} does not fit this run: it has no {err}") from None
    except (AttributeError, IndexError, TypeError, ValueError, RuntimeError) as err:
        why = " ".join(str(err).split())  # torch's load_state_dict errors span lines
        raise CheckpointError(f"{source} does not fit this run: {why}") from None


def save_run_state(path, backend, sampler, generators=None, loop: dict | None = None) -> Path:
    """backend_state() plus the loop's own JSON-able values, written by save_checkpoint."""
    arrays, meta = backend_state(backend, sampler, generators)
    return save_checkpoint(path, arrays, {**meta, "loop": loop or {}})


def load_run_state(path, backend, sampler, generators=None) -> dict:
    """Verify, load and restore a save_run_state() file; returns its meta (meta["loop"])."""
    arrays, meta = load_checkpoint(path, backend=backend.kind)
    restore_backend_state(backend, sampler, arrays, meta, generators, f"checkpoint {path}")
    return meta
