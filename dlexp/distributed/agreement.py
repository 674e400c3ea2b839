"""What every rank must decide alike, decided once: whether to stop after this step, and what the
evaluation hooks (early stopping, a search's pruning) concluded.

A signal reaches one rank, or all of them at different moments; a pruner answers rank 0. Each
rank then stops after the same step, so that no rank waits forever in a collective.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from dlexp.distributed.collectives import from_rank_zero, max_over_ranks
from dlexp.errors import DlexpError
from dlexp.run.record import RunStopped

_config_sent = False  # whether rank 0 has sent this process's one run config


def send_run_config(container: dict | None) -> None:
    """Rank 0's resolved config (and so its run folder) to the ranks that never start Hydra
    (torchrun) or compose their own (SLURM); None: no run comes, they stop waiting."""
    global _config_sent
    from_rank_zero(container)
    _config_sent = True


def receive_run_config() -> dict | None:
    """On a rank above 0: rank 0's config, or None when it runs nothing."""
    return from_rank_zero(None)


def config_was_sent() -> bool:
    return _config_sent


def shared_run_config(cfg: DictConfig, ranks, decide: Callable[[DictConfig], DictConfig]):
    """The config every rank trains with: `decide(cfg)` on rank 0 (a resume's saved config),
    received by the others. A failure on rank 0 tells the others that no run comes."""
    if not ranks.writes:
        received = receive_run_config()
        if received is None:
            raise DlexpError("rank 0 did not start the run; its error says why")
        return OmegaConf.create(received)
    try:
        decided = decide(cfg)
    except BaseException:
        send_run_config(None)
        raise
    send_run_config(OmegaConf.to_container(decided, resolve=True))
    return decided


class SharedStop:
    """The loop's stop flag for several ranks: each read of `requested` is an all-reduce (MAX) of
    the signal each rank has received, so the loop must read it once per step on every rank, as
    dlexp.loop.fit does. `local` is the rank's own StopRequests."""

    def __init__(self, local):
        self.local = local
        self.signal = 0  # the agreed signal: the largest any rank received; 0 for none

    @property
    def requested(self) -> bool:
        self.signal = max_over_ranks(self.local.signal or 0)
        return self.signal != 0

    def signal_name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else ""


class RankZeroHooks:
    """The evaluation hooks, run on rank 0 only; their warnings and any RunStopped reach every
    rank. Rank 0 alone reports to a search's study (one trial, not one per rank)."""

    def __init__(self, hooks, writes: bool):
        self.hooks, self.writes = list(hooks), writes

    def __call__(self, step: int, metrics: dict[str, float]) -> str | None:
        warnings, stopped = [], None
        if self.writes:
            try:
                for hook in self.hooks:
                    warning = hook(step, metrics)
                    if warning:
                        warnings.append(warning)
            except RunStopped as err:
                stopped = (err.status, err.reason)
        warnings, stopped = from_rank_zero((warnings, stopped))
        if stopped is not None:
            raise RunStopped(*stopped)
        return "; ".join(warnings) or None if self.writes else None  # logged once, by rank 0
