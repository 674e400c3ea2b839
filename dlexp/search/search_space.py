"""A search space written in Hydra's override syntax, as Hydra's Optuna plugin reads it:

    optim.lr: tag(log, interval(1e-4, 1e-2))   # a float, log-uniform
    model.dropout: interval(0.0, 0.5)          # a float, uniform
    model.width: int(interval(64, 1024))       # an int; tag(log, int(interval(..))) for log
    batch_size: choice(64, 128, 256)           # categorical
    model.n_hidden: choice([512], [512,256])   # lists become their override text "[512,256]"
    seed: range(1, 4)                          # 1, 2, 3 (the stop is excluded, as in Python)

A plain value fixes the key for every trial. Optuna is imported only when a space is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer

from dlexp.errors import ConfigError, one_line


@dataclass
class SearchSpace:
    distributions: dict  # override key -> optuna distribution
    fixed: list[str]  # overrides every trial gets, in command-line order


def _distribution(override: Override):
    # Optuna, here and below: only once a search starts (Hydra imports the sweepers every run)
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    key = override.get_key_element()
    if override.is_choice_sweep() or (override.is_range_sweep() and override.value().shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        return CategoricalDistribution(choices)
    value = override.value()
    if override.is_range_sweep():
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            return CategoricalDistribution(list(override.sweep_iterator()))
        last = value.start + value.step * ((value.stop - 1 - value.start) // value.step)
        if last < value.start:
            raise ConfigError(f"search space {key}: {override.input_line} is empty")
        return IntDistribution(value.start, last, step=value.step)
    if override.is_interval_sweep():
        log = "log" in value.tags
        is_int = isinstance(value.start, int) and isinstance(value.end, int)
        kind = IntDistribution if is_int else FloatDistribution
        try:
            return kind(value.start, value.end, log=log)
        except ValueError as err:
            raise ConfigError(f"search space {key}: {err}") from None
    raise ConfigError(
        f"search space {key}: {override.input_line} is not a choice, range or interval"
    )


def parse_space(params: dict[str, str], arguments: list[str]) -> SearchSpace:
    """The sweeper's `params` then the command line's overrides (which win on the same key)."""
    lines = [f"{key}={value}" for key, value in params.items()] + list(arguments)
    try:
        parsed = OverridesParser.create().parse_overrides(lines)
    except Exception as err:  # Hydra's parse errors span lines
        raise ConfigError(f"search space: {one_line(err)}") from None
    by_key: dict[str, Override] = {}
    for override in parsed:
        by_key.pop(override.get_key_element(), None)  # a later line replaces, and moves to the end
        by_key[override.get_key_element()] = override
    distributions, fixed = {}, []
    for key, override in by_key.items():
        if override.is_sweep_override():
            distributions[key] = _distribution(override)
        else:
            fixed.append(f"{key}={override.get_value_element_as_str()}")
    return SearchSpace(distributions, fixed)


def override_text(key: str, value) -> str:
    """`key=value` for a sampled value; strings are already override text ("[512,256]", "adam")."""
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    if isinstance(value, float):
        return f"{key}={value!r}"
    return f"{key}={value}"


def probe_values(distribution) -> list:
    """Values worth composing before a search starts: every choice, or both ends."""
    from optuna.distributions import CategoricalDistribution  # (as _distribution)

    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    return [distribution.low, distribution.high]


def suggest(trial, key: str, distribution):
    """Ask the trial for `key` through Optuna's public suggest API."""
    from optuna.distributions import CategoricalDistribution, IntDistribution  # (as above)

    d = distribution
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(key, d.choices)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(key, d.low, d.high, step=d.step, log=d.log)
    return trial.suggest_float(key, d.low, d.high, step=d.step, log=d.log)
