"""What a search checks before its first trial: the study's direction against the metric, that
every value of the search space composes, and that the space fits the study's stored one."""

from __future__ import annotations

from omegaconf import DictConfig

from dlexp.errors import ConfigError
from dlexp.run.record import metric_direction
from dlexp.search.grid_sweeper import try_compose
from dlexp.search.search_space import SearchSpace, override_text, probe_values


def study_direction(metric: str, direction: str | None) -> str:
    """The metric's own direction (dlexp.run.record.metric_direction); a configured
    hydra.sweeper.direction must agree with it."""
    derived = metric_direction(metric, asker="search")
    if direction is not None and direction != derived:
        raise ConfigError(
            f"hydra.sweeper.direction={direction} contradicts optimized_metric {metric}, which "
            f"is {derived}d; drop hydra.sweeper.direction"
        )
    return derived


def check_space(loader, config: DictConfig, space: SearchSpace) -> None:
    """Compose every choice and both ends of each range before a trial runs: probe i sets
    each key to its i-th value; a probe that fails is retried key by key to name the culprit."""
    probes = {key: probe_values(d) for key, d in space.distributions.items()}
    for i in range(max((len(v) for v in probes.values()), default=0)):
        probe = [override_text(k, v[i % len(v)]) for k, v in probes.items()]
        if try_compose(loader, config, space.fixed + probe)[1] is None:
            continue
        for override, distribution in zip(probe, space.distributions.values(), strict=True):
            reason = try_compose(loader, config, [*space.fixed, override])[1]
            if reason:
                integer = "expected an integer" in reason and isinstance(distribution.low, float)
                hint = " (an int key needs int(interval(a, b)))" if integer else ""
                raise ConfigError(f"search space: {reason}{hint}; nothing was run")


def check_space_fits(study, space: SearchSpace, study_name: str) -> None:
    """A study keeps each parameter's kind (and a choice's list) for good: refuse a change."""
    # Optuna: only once a search starts (Hydra imports the sweepers on every run)
    from optuna.distributions import check_distribution_compatibility

    held = {}
    for trial in study.get_trials(deepcopy=False):
        held.update(trial.distributions)
    for key, distribution in space.distributions.items():
        try:
            if key in held:
                check_distribution_compatibility(held[key], distribution)
        except ValueError as err:
            raise ConfigError(
                f"search space {key}: {err} (study {study_name!r} holds {held[key]}); "
                f"keep it, or pick another hydra.sweeper.study_name"
            ) from None
