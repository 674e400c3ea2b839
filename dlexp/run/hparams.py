"""What a run shows in TensorBoard's HParams tab: the keys that tell runs apart, never plumbing.

A run logs the keys a sweep varies, then the other keys its command line changed, then the few
that always matter. TensorBoard builds the table from every run it shows and ticks the first five
columns, the keys whose values differ between those runs first (by name). A sweep's job also logs
`trial`: every swept value in short, as in its folder's name (`lr=0.001235,n_hidden=[1024,512]`).
"""

from __future__ import annotations

import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dlexp.overrides import is_plumbing, override_key
from dlexp.run.folder import short_overrides

ALWAYS_SHOWN = ("model.name", "optim.name", "optim.lr", "batch_size", "max_steps", "seed")


def swept_keys(hydra_cfg) -> list[str]:
    """The keys a multirun sweeps: `a=1,2`-style overrides and the sweeper's `params`."""
    keys: list[str] = []
    params = OmegaConf.select(hydra_cfg, "sweeper.params") or {}
    keys.extend(str(k) for k in params)
    multirun = Path(str(hydra_cfg.sweep.dir)) / "multirun.yaml"
    if multirun.is_file():
        task = OmegaConf.load(multirun).hydra.overrides.task
        for override in OverridesParser.create().parse_overrides(list(task)):
            if override.is_sweep_override():
                keys.append(override.get_key_element())
    return [k for k in dict.fromkeys(keys) if not is_plumbing(k)]


def _shown_key(cfg: DictConfig, key: str) -> str:
    """A group chosen on the command line (model=...) shows as its `name` key (model.name)."""
    node = OmegaConf.select(cfg, key)
    return f"{key}.name" if isinstance(node, DictConfig) and "name" in node else key


def _value(cfg: DictConfig, key: str, choices: dict):
    """A key's resolved value; a group without a node of its own (experiment=...) its option."""
    node = OmegaConf.select(cfg, key)
    if node is None or isinstance(node, DictConfig):
        return choices.get(key)
    value = OmegaConf.to_container(node) if OmegaConf.is_config(node) else node
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def run_hparams(cfg: DictConfig) -> dict:
    """Ordered {key: value}: `trial` and the swept keys, the command line's other keys, then
    ALWAYS_SHOWN."""
    keys: list[str] = []
    swept: list[str] = []
    choices: dict = {}
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        choices = dict(hydra_cfg.runtime.choices)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            swept = [_shown_key(cfg, k) for k in swept_keys(hydra_cfg)]
        keys.extend(override_key(o) for o in hydra_cfg.overrides.task if not is_plumbing(o))
    keys.extend(ALWAYS_SHOWN)
    hparams = {}
    for key in dict.fromkeys([*swept, *(_shown_key(cfg, k) for k in keys)]):
        value = _value(cfg, key, choices)
        if value is not None:
            hparams[key] = value
    swept = [k for k in swept if k in hparams]
    if swept:
        values = ",".join(f"{k}={json.dumps(hparams[k], separators=(',', ':'))}" for k in swept)
        hparams = {"trial": short_overrides(values.replace('"', "")), **hparams}
    return hparams
