"""A run's saved config read back: resolved where it can be, and flattened to dotted keys with the
plumbing left out, which is what tells two runs' configs apart (seed groups, dlexp-compare)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from dlexp.overrides import is_plumbing, override_key
from dlexp.run.folder import read_overrides

SEED_KEY = "seed"


def resolved_config(folder: Path) -> dict:
    """The run's .hydra/config.yaml with interpolations resolved where they can be."""
    path = folder / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    cfg = OmegaConf.load(path)
    if "output_dir" in cfg:
        cfg.output_dir = str(folder)  # `${hydra:runtime.output_dir}` resolves only inside Hydra
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation only a live Hydra can resolve: show it as written
        return OmegaConf.to_container(cfg, resolve=False)


def flatten(config: dict, prefix: str = "") -> dict[str, object]:
    """{"optim": {"lr": 0.1}} -> {"optim.lr": 0.1}; lists stay values."""
    flat = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def compared_config(folder: Path, flat: dict[str, object] | None = None) -> dict[str, object]:
    """The run's resolved config as dotted keys (`flat`, when already read), plumbing left out.
    A run without a saved config gives its overrides (as written); one without either gives {}."""
    flat = flatten(resolved_config(folder)) if flat is None else flat
    if flat:
        return {k: v for k, v in flat.items() if not is_plumbing(k)}
    return {override_key(o): o.partition("=")[2] for o in read_overrides(folder)}


def identity(config: dict[str, object]) -> str:
    """A comparable text of a compared config without its seed: equal for runs of one group."""
    shown = {k: v for k, v in config.items() if k != SEED_KEY}
    return json.dumps(shown, sort_keys=True, default=str)


def differing_config_keys(configs: list[dict[str, object]]) -> list[str]:
    """Keys whose value differs between the configs (absent counts), in first-seen order."""
    keys = list(dict.fromkeys(k for config in configs for k in config))
    texts = [{k: json.dumps(v, sort_keys=True, default=str) for k, v in c.items()} for c in configs]
    return [k for k in keys if len({text.get(k) for text in texts}) > 1]


def config_text(value: object) -> str:
    """A config value as YAML writes it inline: [100, 100], null, true, 0.001."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)
