"""The checkpoint format before safetensors (`last.ckpt`, `best.ckpt`, format version 1), read
only, so that older runs still resume and evaluate.

A file is one ASCII header line, the metadata as JSON, then the payload:

    dlexp-checkpoint 1 <sha256 of metadata+payload> <metadata bytes> <payload bytes>\\n

The payload, `np.savez` (NumPy runs) or `torch.save` of a dict of tensors (torch runs), is parsed
only after the checksum matched, with pickle off: reading one never runs code from the file.
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np

MAGIC = b"dlexp-checkpoint "
VERSION = 1
MAX_HEADER = 256  # bytes; the header line is ~110


def read_verified(data: memoryview) -> tuple[dict, memoryview]:
    """(metadata, payload) once the header, the sizes and the checksum are checked; the payload
    is not yet parsed. Raises ValueError with the reason in a few words."""
    head = bytes(data[:MAX_HEADER])
    end = head.find(b"\n")
    if end < 0:
        raise ValueError("truncated inside its header" if len(data) < MAX_HEADER else "bad header")
    fields = head[len(MAGIC) : end].split()
    if len(fields) != 4 or not all(f.isdigit() for f in (fields[0], fields[2], fields[3])):
        raise ValueError("not a dlexp checkpoint (malformed header)")
    version, meta_len, payload_len = int(fields[0]), int(fields[2]), int(fields[3])
    if version != VERSION:
        raise ValueError(f"format version {version}; this dlexp reads versions 1 and 2")
    body = data[end + 1 :]
    if len(body) != meta_len + payload_len:
        got = f"{len(body)} of {meta_len + payload_len} bytes after the header"
        short = len(body) < meta_len + payload_len
        raise ValueError(f"truncated ({got})" if short else f"too long ({got})")
    if hashlib.sha256(body).hexdigest() != fields[1].decode("ascii", "replace"):
        raise ValueError("checksum mismatch (the file is corrupt)")
    try:
        meta = json.loads(bytes(body[:meta_len]))
    except ValueError:
        raise ValueError("unreadable metadata") from None
    if not isinstance(meta, dict):
        raise ValueError("not a dlexp checkpoint (no backend in its metadata)")
    return meta, body[meta_len:]


def payload_arrays(meta: dict, payload: memoryview) -> dict:
    """The arrays of a verified payload, read with pickle off; torch is loaded for torch files."""
    if meta["backend"] == "numpy":
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    import torch  # torch: never loaded by NumPy runs

    tensors = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    numpy_arrays = set(meta.get("numpy_arrays", ()))  # stored as tensors, handed back as NumPy
    return {k: t.numpy() if k in numpy_arrays else t for k, t in tensors.items()}
