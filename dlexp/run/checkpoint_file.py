"""Checkpoint files: a run's whole state as named arrays plus JSON; atomic, checksummed, no pickle.

A file is one ASCII header line, the metadata as JSON, then the payload:

    dlexp-checkpoint <version> <sha256 of metadata+payload> <metadata bytes> <payload bytes>\\n

The payload, `np.savez` (NumPy runs) or `torch.save` of a dict of tensors (torch runs), is parsed
only after the checksum matched, with pickle off: loading never runs code from the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from dlexp.errors import DlexpError

FORMAT_VERSION = 1
MAGIC = b"dlexp-checkpoint "
BACKENDS = ("numpy", "torch")
MAX_HEADER = 256  # bytes; the header line is ~110
_MARKERS = ("__array__", "__scalar__", "__tuple__", "__int__", "__int_keys__")
_EXACT_INT = 2**53  # beyond this a JSON reader other than Python's may round an int


class CheckpointError(DlexpError):
    """A checkpoint that is missing, damaged, not ours, or not this run's."""


def _is_array(obj) -> bool:
    torch = sys.modules.get("torch")  # never imported here for a NumPy run
    return isinstance(obj, np.ndarray) or (torch is not None and isinstance(obj, torch.Tensor))


def flatten_state(state: dict) -> tuple[dict, dict]:
    """Nested state -> ({"a/b/c": array}, a JSON-able tree that names those arrays)."""
    arrays: dict = {}
    return arrays, _encode(state, "", arrays)


def _encode(obj, path: str, arrays: dict):
    def child(key) -> str:
        return f"{path}/{key}" if path else str(key)

    if _is_array(obj) or isinstance(obj, np.generic):  # a NumPy scalar keeps its dtype as 0-d
        if path in arrays:
            raise ValueError(f"two state entries are both named {path!r}")
        arrays[path] = np.asarray(obj) if isinstance(obj, np.generic) else obj
        return {"__scalar__" if isinstance(obj, np.generic) else "__array__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _MARKERS for k in obj):
            return {k: _encode(v, child(k), arrays) for k, v in obj.items()}
        if all(isinstance(k, int) and not isinstance(k, bool) for k in obj):  # torch.optim
            return {"__int_keys__": {str(k): _encode(v, child(k), arrays) for k, v in obj.items()}}
        raise TypeError(f"state dict at {path!r} has keys a checkpoint cannot store")
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, child(i), arrays) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, int) and not isinstance(obj, bool) and abs(obj) > _EXACT_INT:
        return {"__int__": str(obj)}  # PCG64's 128-bit state, as a decimal string
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"a checkpoint cannot store a {type(obj).__name__} (at {path!r})")


def unflatten_state(tree, arrays: dict):
    """The inverse of flatten_state."""
    if isinstance(tree, list):
        return [unflatten_state(v, arrays) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1 and next(iter(tree)) in _MARKERS:
        [(marker, value)] = tree.items()
        if marker == "__array__":
            return arrays[value]
        if marker == "__scalar__":
            return arrays[value][()]
        if marker == "__tuple__":
            return tuple(unflatten_state(v, arrays) for v in value)
        if marker == "__int__":
            return int(value)
        return {int(k): unflatten_state(v, arrays) for k, v in value.items()}
    return {k: unflatten_state(v, arrays) for k, v in tree.items()}


def array_layout(arrays: dict) -> dict[str, list]:
    """{name: [shape, dtype name]} for NumPy arrays and torch tensors alike."""
    return {k: [list(a.shape), str(a.dtype).removeprefix("torch.")] for k, a in arrays.items()}


def _numpy_payload(arrays: dict) -> memoryview:
    if not all(isinstance(a, np.ndarray) for a in arrays.values()):
        raise TypeError("a NumPy checkpoint holds NumPy arrays only")
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getbuffer()


def _torch_payload(arrays: dict) -> memoryview:
    import torch  # torch: never loaded by NumPy runs

    tensors = {
        k: torch.from_numpy(a.copy()) if isinstance(a, np.ndarray) else a.detach()
        for k, a in arrays.items()
    }
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getbuffer()


def _plain_scalar(obj):
    """A NumPy scalar in the caller's meta (e.g. a metric) as a Python number."""
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"a checkpoint's metadata cannot hold a {type(obj).__name__}")


def save_checkpoint(path: str | Path, arrays: dict, meta: dict) -> Path:
    """Write arrays + meta (meta["backend"] picks the payload format) atomically to `path`."""
    path = Path(path)
    if meta.get("backend") not in BACKENDS:
        raise ValueError(f"meta['backend'] must be one of {BACKENDS}, got {meta.get('backend')!r}")
    numpy_arrays = [k for k, a in arrays.items() if isinstance(a, np.ndarray)]
    layout = array_layout(arrays)
    meta = {
        **meta,
        "format_version": FORMAT_VERSION,
        "shapes": {k: shape for k, (shape, _) in layout.items()},  # for the caller's checks
        "dtypes": {k: dtype for k, (_, dtype) in layout.items()},
        "numpy_arrays": numpy_arrays,  # a torch file stores these as tensors
    }
    payload = (_numpy_payload if meta["backend"] == "numpy" else _torch_payload)(arrays)
    meta_bytes = json.dumps(meta, separators=(",", ":"), default=_plain_scalar).encode()
    digest = hashlib.sha256(meta_bytes)
    digest.update(payload)
    header = f"{MAGIC.decode()}{FORMAT_VERSION} {digest.hexdigest()} {len(meta_bytes)} "
    header += f"{len(payload)}\n"
    write_atomically(path, (header.encode(), meta_bytes, payload))
    return path


def write_atomically(path: Path, parts) -> None:
    """Temp file in the same folder, fsync, rename over `path`, fsync the folder."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide checkpoints from a shared group
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # no directory fds on Windows; the rename still stands
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _read_verified(path: Path) -> tuple[dict, memoryview]:
    """Header, size and checksum checked, metadata parsed; the payload is not yet touched."""

    def fail(why: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {path}: {why}")

    if not path.is_file():
        raise fail("no such file" if not path.exists() else "not a file")
    data = memoryview(path.read_bytes())
    head = bytes(data[:MAX_HEADER])
    if not head.startswith(MAGIC):
        if MAGIC.startswith(head):  # empty, or cut inside the magic word
            raise fail("truncated inside its header")
        raise fail("not a dlexp checkpoint (no dlexp-checkpoint header)")
    end = head.find(b"\n")
    if end < 0:
        raise fail("truncated inside its header" if len(data) < MAX_HEADER else "bad header")
    fields = head[len(MAGIC) : end].split()
    if len(fields) != 4 or not all(f.isdigit() for f in (fields[0], fields[2], fields[3])):
        raise fail("not a dlexp checkpoint (malformed header)")
    version, meta_len, payload_len = int(fields[0]), int(fields[2]), int(fields[3])
    digest = fields[1].decode("ascii", "replace")
    if version != FORMAT_VERSION:
        raise fail(f"format version {version}; this dlexp reads version {FORMAT_VERSION}")
    body = data[end + 1 :]
    if len(body) != meta_len + payload_len:
        got = f"{len(body)} of {meta_len + payload_len} bytes after the header"
        raise fail(
            f"truncated ({got})" if len(body) < meta_len + payload_len else f"too long ({got})"
        )
    if hashlib.sha256(body).hexdigest() != digest:
        raise fail("checksum mismatch (the file is corrupt)")
    try:
        meta = json.loads(bytes(body[:meta_len]))
    except ValueError:
        raise fail("unreadable metadata") from None
    if not isinstance(meta, dict) or meta.get("backend") not in BACKENDS:
        raise fail("not a dlexp checkpoint (no backend in its metadata)")
    return meta, body[meta_len:]


def load_checkpoint(path: str | Path, backend: str | None = None) -> tuple[dict, dict]:
    """(arrays, meta) from a save_checkpoint file; any fault is one CheckpointError line."""
    path = Path(path)
    meta, payload = _read_verified(path)
    if backend is not None and meta["backend"] != backend:
        kind = meta["backend"]
        raise CheckpointError(f"checkpoint {path}: a {kind} checkpoint; this run uses {backend}")
    try:
        if meta["backend"] == "numpy":
            with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        else:
            import torch  # (as _torch_payload)

            arrays = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
            numpy_arrays = set(meta.get("numpy_arrays", ()))
            arrays = {k: a.numpy() if k in numpy_arrays else a for k, a in arrays.items()}
    except Exception as err:  # a forged payload with a matching checksum, or a bug
        msg = " ".join(str(err).split())[:200]
        raise CheckpointError(f"checkpoint {path}: unreadable payload ({msg})") from None
    if sorted(arrays) != sorted(meta.get("shapes", {})):
        raise CheckpointError(f"checkpoint {path}: its arrays disagree with its metadata")
    return arrays, meta


def first_mismatch(saved: dict, current: dict, prefix: str = "") -> str | None:
    """The first key under `prefix` whose [shape, dtype] differ, in the current run's order."""
    for key, layout in current.items():
        if key.startswith(prefix) and saved.get(key) != layout:
            if key not in saved:
                return f"{key} is missing from the checkpoint"
            return f"{key} is {saved[key]} in the checkpoint, {layout} in this run"
    extra = [k for k in saved if k.startswith(prefix) and k not in current]
    return f"{extra[0]} is in the checkpoint but not in this run" if extra else None


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
