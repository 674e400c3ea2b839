"""`dlexp-eval RUN_OR_CHECKPOINT [split=test] [device=...]`: the metrics of a saved model.

The run's saved config rebuilds the model; the checkpoint (the run's `last`, or the file given)
fills it, on any device. The metrics are printed, and written to
<run>/eval/<checkpoint>_<split>.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

import dlexp
from dlexp.build import build_parts, load_run_data, make_backend, seed_generators
from dlexp.data import BatchSampler
from dlexp.errors import ConfigError, DlexpError
from dlexp.run.checkpoint_file import load_run_state
from dlexp.run.folder import read_saved_config, saved_config_file
from dlexp.run.resume import checkpoint_to_resume, run_dir_of

PROG = "dlexp-eval"
USAGE = f"usage: {PROG} RUN_DIR_OR_CHECKPOINT [split=val|test] [device=...] [data.root=...]"
SETTABLE = ("split", "device", "eval_batch_size", "data.root", "data.download")
SPLITS = ("val", "test")


def _saved_config(run_dir: Path, settings: dict) -> DictConfig:
    cfg = read_saved_config(run_dir)
    if cfg is None:
        saved_file = saved_config_file(run_dir)
        raise ConfigError(f"{run_dir} has no saved config ({saved_file}): is it a dlexp run?")
    for key, value in settings.items():
        if key != "split":
            OmegaConf.update(cfg, key, value)
    return cfg


def evaluate_checkpoint(target: str | Path, settings: dict | None = None) -> dict:
    """Rebuild the run's model, load the checkpoint and evaluate one split; returns the record."""
    settings = dict(settings or {})
    split = settings.get("split", "test")
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    checkpoint = checkpoint_to_resume(target)
    run_dir = run_dir_of(checkpoint)
    cfg = _saved_config(run_dir, settings)
    model_rng, sampler_rng = seed_generators(cfg.seed)
    parts = build_parts(cfg, model_rng)
    data = load_run_data(cfg)
    backend = make_backend(parts, data, cfg, np.random.default_rng(0))
    if split not in backend.eval_splits:
        raise ConfigError(f"this run has no {split} split (data.validation_size=0?)")
    sampler = BatchSampler(len(data.train), cfg.batch_size, sampler_rng)
    meta = load_run_state(checkpoint, backend, sampler)
    metrics = {f"{split}/{name}": value for name, value in backend.evaluate(split).items()}
    record = {
        "checkpoint": str(checkpoint),
        "step": meta["loop"].get("step"),
        "split": split,
        "device": str(parts.device),
        "metrics": metrics,
    }
    out = run_dir / "eval" / f"{checkpoint.stem}_{split}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    record["written_to"] = str(out)
    return record


def _parse(argv: list[str]) -> tuple[str, dict]:
    positional = [a for a in argv if "=" not in a]
    if len(positional) != 1:
        raise ConfigError(f"give one run folder or checkpoint file ({USAGE})")
    settings = {}
    for arg in argv:
        if "=" in arg:
            key, value = arg.split("=", 1)
            if key not in SETTABLE:
                raise ConfigError(f"{key} cannot be set here; choose from {', '.join(SETTABLE)}")
            settings[key] = yaml_value(value)
    return positional[0], settings


def yaml_value(text: str):
    """A command-line value as YAML reads it: 1000 is an int, true a bool, cpu a string."""
    return OmegaConf.create({"v": text}).v if text else text


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    if argv and argv[0] == "--version":
        print(f"{PROG} (dlexp) {dlexp.__version__}")
        return
    try:
        target, settings = _parse(argv)
        record = evaluate_checkpoint(target, settings)
    except DlexpError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(2)
    shown = " | ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items())
    print(f"{shown} (step {record['step']}, {record['device']}): {record['written_to']}")


if __name__ == "__main__":
    main()
