"""best.yaml: an `experiment/` preset that reproduces a search's best trial.

The preset holds what the best trial's config changes against a plain `dlexp-train`: the config
groups it picks (as `override /group: option`) and every value that differs from what those
groups give. Plumbing (data.root, output_dir, progress, task_name, search.*) is left out.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from dlexp.config.user_configs import ENV_VAR, package_conf, user_conf_dir
from dlexp.overrides import is_plumbing

FOLDED_GROUPS = ("hparams_search", "experiment", "debug")  # kept as the values they set


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"model.n_hidden": [512, 256], ...}: dotted keys down to leaves; lists are leaves."""
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _job_part(cfg: DictConfig) -> dict[str, Any]:
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)
    return container


def group_overrides(best: DictConfig, plain: DictConfig) -> list[str]:
    """`group=option` for each config group whose choice differs from a plain run's."""
    chosen = best.hydra.runtime.choices
    default = plain.hydra.runtime.choices
    return [
        f"{group}={option}"
        for group, option in chosen.items()
        if not group.startswith("hydra/")
        and group not in FOLDED_GROUPS
        and option is not None
        and option != default.get(group)
    ]


def changed_values(best: DictConfig, reference: DictConfig) -> dict[str, Any]:
    """The leaves of `best` that differ from `reference` (the plain run with the same groups)."""
    ours, theirs = flatten(_job_part(best)), flatten(_job_part(reference))
    return {
        key: value
        for key, value in ours.items()
        if not is_plumbing(key) and (key not in theirs or theirs[key] != value)
    }


class _FlowListDumper(yaml.SafeDumper):
    """Lists inline (`n_hidden: [512, 256]`), mappings as blocks."""


_FlowListDumper.add_representer(
    list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, True)
)


def preset_text(groups: list[str], values: dict[str, Any], header: list[str]) -> str:
    """The YAML of an `@package _global_` preset: header comments, defaults, values."""
    lines = ["# @package _global_", *(f"# {line}" for line in header)]
    if groups:
        lines.append("defaults:")
        lines += [f"  - override /{g.split('=')[0]}: {g.split('=', 1)[1]}" for g in groups]
    text = "\n".join(lines) + "\n"
    if values:
        text += yaml.dump(_nest(values), Dumper=_FlowListDumper, sort_keys=False)
    return text


def free_preset_name(wanted: str) -> str:
    """`wanted`, or `wanted_2`, `wanted_3`, ...: the first name that neither a shipped preset nor
    one of the user's (dlexp.config.user_configs) has, so the copy overwrites nothing."""
    folders = [package_conf() / "experiment"]
    if user_conf_dir() is not None:
        folders.append(user_conf_dir() / "experiment")
    name, n = wanted, 1
    while any((folder / f"{name}.yaml").exists() for folder in folders):
        n += 1
        name = f"{wanted}_{n}"
    return name


def write_best_preset(
    compose: Callable[[list[str]], DictConfig],
    overrides: list[str],
    best,
    metric: str,
    study: tuple[str, str],
    sweep_dir: Path,
) -> str:
    """best.yaml from the best trial's overrides; returns the line that shows how to run it.

    `compose` turns overrides into a job config; `study` is (study name, storage).
    """
    best_cfg = compose(overrides)
    groups = group_overrides(best_cfg, compose([]))
    values = changed_values(best_cfg, compose(groups))
    name = free_preset_name(f"{study[0]}_best".replace("/", "_"))
    folder = user_conf_dir() or Path(os.environ.get(ENV_VAR) or "conf")  # the user's configs
    if folder.is_absolute() and folder.is_relative_to(Path.cwd()):
        folder = folder.relative_to(Path.cwd())
    target = folder / "experiment" / f"{name}.yaml"
    copy = f"mkdir -p {folder / 'experiment'} && cp {sweep_dir / 'best.yaml'} {target}"
    how = f"{copy} && dlexp-train experiment={name}"
    header = [
        f"The best trial of study {study[0]!r} (trial {best.number}, {metric} {best.value:.4f}),",
        f"stored in {study[1]}.",
        "It sets what the trial's overrides change (plumbing such as data.root left out).",
        f"Use it: {how}",
    ]
    (sweep_dir / "best.yaml").write_text(preset_text(groups, values, header))
    return how
