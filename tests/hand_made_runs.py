"""Run folders written by hand, as dlexp leaves them (.hydra/, metrics.json, environment.json,
metrics.csv), for the tests of seed groups, dlexp-runs and dlexp-compare: no training needed."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import yaml

BASE_CONFIG = {  # what every hand-made run shares, as a resolved .hydra/config.yaml holds it
    "model": {"name": "numpy_mlp", "n_hidden": [100]},
    "optim": {"name": "sgd", "lr": 0.001},
    "max_steps": 100,
    "optimized_metric": "val/accuracy",
    "task_name": "numpy_mlp",
    "progress": False,
    "data": {"root": "/data/a"},
}


def nested(dotted: dict) -> dict:
    """{"optim.lr": 0.1} -> {"optim": {"lr": 0.1}}."""
    tree: dict = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def merged(base: dict, changes: dict) -> dict:
    out = json.loads(json.dumps(base))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def completed(val: float, test: float, steps: int = 100, wall_s: float = 1.5, **extra) -> dict:
    """A completed run's metrics.json: objective = best val accuracy."""
    best_val = extra.pop("best_val", val)
    return {
        "status": "completed",
        "steps": steps,
        "optimized_metric": "val/accuracy",
        "objective": best_val,
        "final": {
            **{"val/accuracy": val, "val/loss": 2 - val, "test/accuracy": test},
            **{"test/loss": 2 - test, "train/accuracy": val + 0.05},
        },
        "best": {"val/accuracy": best_val, "val/loss": 2 - best_val, "best_step": steps},
        "timing": {"wall_s": wall_s},
        **extra,
    }


def failed(reason: str, steps: int) -> dict:
    return {"status": "failed", "reason": reason, "steps": steps, "final": {}, "best": {},
            "optimized_metric": "val/accuracy", "objective": None, "timing": {}}  # fmt: skip


def resolved(text: str):
    """An override's value as Hydra resolves it: `1e-3` is the float 0.001 (YAML 1.1 says str)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(text)
        except ValueError:
            return value
    return value


def write_run(
    folder: Path,
    seed: int,
    overrides: dict[str, str] | None = None,
    record: dict | None = None,
    pid: int | None = None,
    curves: dict[str, list[float]] | None = None,
) -> Path:
    """A run folder: `overrides` (dotted key -> text) also change its resolved config; record
    None leaves no metrics.json; `pid` writes environment.json; `curves` (tag -> a value every
    10 steps) writes metrics.csv."""
    overrides = overrides or {}
    (folder / ".hydra").mkdir(parents=True)
    config = merged(BASE_CONFIG, nested({k: resolved(v) for k, v in overrides.items()}))
    config["seed"] = seed
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    lines = [f"{k}={v}" for k, v in overrides.items()] + [f"seed={seed}", "progress=false"]
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(lines))
    (folder / ".hydra" / "hydra.yaml").write_text("hydra: {}\n")
    if record is not None:
        (folder / "metrics.json").write_text(json.dumps(record))
    if pid is not None:
        env = {"host": socket.gethostname(), "pid": pid, "command": ["dlexp-train"]}
        (folder / "environment.json").write_text(json.dumps(env))
    if curves:
        rows = ["step,tag,value"]
        rows += [
            f"{10 * (i + 1)},{tag},{v!r}" for tag, vs in curves.items() for i, v in enumerate(vs)
        ]
        (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    return folder


def rising_curves(rng: np.random.Generator, level: float, points: int = 6) -> dict:
    """Accuracy and loss curves for train, val and test that rise (fall) towards `level`."""
    steps = np.arange(1, points + 1) / points
    curves = {}
    for split, offset in (("train", 0.05), ("val", 0.0), ("test", -0.01)):
        accuracy = (level + offset) * steps + rng.normal(0, 0.01, points)
        curves[f"{split}/accuracy"] = accuracy.tolist()
        curves[f"{split}/loss"] = (2.3 - 1.5 * accuracy).tolist()
    return curves
