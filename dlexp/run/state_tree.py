"""A run's nested state split into named arrays and a JSON tree that names them, and back.

A checkpoint file stores the arrays as tensors and the tree as JSON (dlexp.run.checkpoint_file).
JSON has no tuples, int keys, NumPy scalars or 128-bit ints, so the tree marks them.
"""

from __future__ import annotations

import sys

import numpy as np

_MARKERS = ("__array__", "__scalar__", "__tuple__", "__int__", "__int_keys__")
_EXACT_INT = 2**53  # beyond this a JSON reader other than Python's may round an int


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


def first_mismatch(saved: dict, current: dict, prefix: str = "") -> str | None:
    """The first key under `prefix` whose [shape, dtype] differ, in the current run's order."""
    for key, layout in current.items():
        if key.startswith(prefix) and saved.get(key) != layout:
            if key not in saved:
                return f"{key} is missing from the checkpoint"
            return f"{key} is {saved[key]} in the checkpoint, {layout} in this run"
    extra = [k for k in saved if k.startswith(prefix) and k not in current]
    return f"{extra[0]} is in the checkpoint but not in this run" if extra else None
