"""The grid sweeper (`-m a=1,2 b=x,y`): the cartesian product of the swept values, as Hydra's
basic sweeper makes it, but every job's config is composed before any job runs, so one bad value
refuses the whole sweep in one line instead of ending it halfway. With Hydra's default launcher
the jobs run on dlexp's worker pool (hydra.sweeper.n_jobs at a time, no batch barrier); another
launcher (joblib, submitit) gets them in batches of max_batch_size.

It is written on Hydra's public `Sweeper` plugin API; Hydra's own BasicSweeper lives in
`hydra._internal`, which is no API to build on.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from dlexp.errors import ConfigError, one_line, user_errors
from dlexp.search.sweep_resume import finished_jobs
from dlexp.search.worker_pool import Finished, Job, WorkerPool, uses_pool

log = logging.getLogger(__name__)


def try_compose(config_loader, master: DictConfig, overrides: Sequence[str]):
    """(the job's config, None), or (None, the one-line reason it cannot compose)."""
    try:
        return config_loader.load_sweep_config(master, list(overrides)), None
    except user_errors() as err:
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


def grid_jobs(overrides: list[Override]) -> list[list[str]]:
    """Every job's overrides: the product of each key's values, in the order Hydra's basic
    sweeper gives (keys in command-line order, a later override of a key replacing it)."""
    values: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            values[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            values[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise ConfigError(
                f"{override.input_line}: the grid sweeps lists and ranges, not intervals; "
                f"an interval needs an Optuna search (hparams_search=...)"
            )
    return [list(job) for job in itertools.product(*values.values())]


def _batches(numbers: list[int], size: int) -> list[tuple[int, int]]:
    """(first, last) of consecutive job numbers, at most `size` in each."""
    batches: list[tuple[int, int]] = []
    for n in numbers:
        if batches and n == batches[-1][1] + 1 and n - batches[-1][0] < size:
            batches[-1] = (batches[-1][0], n)
        else:
            batches.append((n, n))
    return batches


class GridSweeper(Sweeper):
    """`hydra/sweeper=dlexp_grid` (conf/hydra/sweeper/dlexp_grid.yaml lists its keys)."""

    def __init__(self, max_batch_size: int | None = None, params: dict | None = None,
                 n_jobs: int = 1, max_retries: int = 1, devices: list | None = None,
                 slots_per_device: int = 1) -> None:  # fmt: skip
        if max_batch_size is not None and max_batch_size < 1:
            raise ConfigError(f"hydra.sweeper.max_batch_size must be >= 1, got {max_batch_size}")
        self.max_batch_size = max_batch_size  # jobs per launch; None: all at once
        self.params = {str(k): str(v) for k, v in (params or {}).items()}
        self.pool_keys = {  # dlexp's worker pool (dlexp.search.worker_pool)
            "n_jobs": n_jobs,
            "max_retries": max_retries,
            "devices": list(devices or []),
            "slots_per_device": slots_per_device,
        }
        self.hydra_context = self.config = self.launcher = self.task_function = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.task_function = task_function
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list:
        loader = self.hydra_context.config_loader
        lines = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        overrides = OverridesParser.create(config_loader=loader).parse_overrides(lines)
        jobs = grid_jobs(overrides)
        swept = [o.get_key_element() for o in overrides if o.is_sweep_override()]
        refuse_uncomposable(loader, self.config, jobs, swept)
        log.debug("composed all %d jobs of the sweep", len(jobs))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        if uses_pool(self.config):
            return [self._run_on_pool(jobs, sweep_dir)]
        size = self.max_batch_size or max(len(jobs), 1)
        done = finished_jobs(sweep_dir)  # a resumed sweep keeps its finished jobs
        returns = []
        todo = [n for n in range(len(jobs)) if n not in done]
        for first, last in _batches(todo, size):  # a launch numbers its jobs from `first` on
            results = self.launcher.launch(jobs[first : last + 1], initial_job_idx=first)
            for result in results:
                _ = result.return_value  # re-raises a job's exception, as Hydra's sweeper does
            returns.append(results)
        return returns

    def _run_on_pool(self, jobs: list[list[str]], sweep_dir: Path) -> list:
        """Every job on dlexp's worker pool, `n_jobs` at a time with no batch barrier."""
        pool = WorkerPool(self.hydra_context, self.task_function, self.config, **self.pool_keys)
        done = finished_jobs(sweep_dir)  # a resumed sweep keeps its finished jobs
        queue = ((n, job) for n, job in enumerate(jobs) if n not in done)
        finished: dict[int, Finished] = {}

        def next_job() -> Job | None:
            number, overrides = next(queue, (None, None))
            return None if number is None else Job(number, overrides)

        pool.run(next_job, lambda done: finished.__setitem__(done.job.number, done))
        pool.write_times(sweep_dir)
        results = [finished[n] for n in sorted(finished)]
        for done in results:
            if not done.died:  # a died job's record says so; the summary shows it
                _ = done.ret.return_value  # re-raises a job's exception, as Hydra's sweeper does
        return [done.ret for done in results]
