"""The grid sweeper: Hydra's basic sweeper, but every job's config is composed before any job
runs, so one bad value refuses the whole sweep in one line instead of ending it halfway."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from dlexp.errors import ConfigError

log = logging.getLogger(__name__)


def try_compose(config_loader, master: DictConfig, overrides: Sequence[str]):
    """(the job's config, None), or (None, the one-line reason it cannot compose)."""
    from dlexp.cli import USER_ERRORS, one_line

    try:
        return config_loader.load_sweep_config(master, list(overrides)), None
    except USER_ERRORS as err:
        return None, one_line(err)


def refuse_uncomposable(
    config_loader, master: DictConfig, jobs: Sequence[Sequence[str]], shown: Sequence[str]
) -> None:
    """Raise ConfigError naming the first job that cannot compose; `shown` are the swept keys."""
    for number, overrides in enumerate(jobs):
        _, reason = try_compose(config_loader, master, overrides)
        if reason is None:
            continue
        label = [o for o in overrides if o.split("=", 1)[0] in shown] or list(overrides)
        for override in label:  # Hydra's message often starts with the override itself
            reason = reason.removeprefix(f"{override}: ")
        raise ConfigError(f"job {number} ({' '.join(label)}): {reason}; nothing was run")


class GridSweeper(BasicSweeper):
    """`-m a=1,2 b=x,y`: the cartesian product, as Hydra's basic sweeper, checked up front."""

    def __init__(self, max_batch_size: int | None = None, params: dict | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)

    def sweep(self, arguments: list[str]):
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        jobs = [job for batch in self.split_arguments(overrides, None) for job in batch]
        swept = [o.get_key_element() for o in overrides if o.is_sweep_override()]
        refuse_uncomposable(self.hydra_context.config_loader, self.config, jobs, swept)
        log.debug("composed all %d jobs of the sweep", len(jobs))
        return super().sweep(arguments)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Every job was composed before the first one ran."""
