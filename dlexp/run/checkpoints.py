"""A run's checkpoints, `last` and `best` in <run>/checkpoints/: written by the loop, read back.

The file format (safetensors, atomic, checksummed) is dlexp.run.checkpoint_file's; this module
decides when to write, and what of the loop goes with the backend's state.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from dlexp.loop import FitResult
from dlexp.run.atomic_write import write_atomically
from dlexp.run.checkpoint_file import backend_state, load_run_state, save_checkpoint

LAST, BEST = "last.safetensors", "best.safetensors"
LEGACY_NAMES = {LAST: "last.ckpt", BEST: "best.ckpt"}  # before safetensors; older runs still load


def checkpoint_folder(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def find_checkpoint(run_dir: Path, name: str = LAST) -> Path | None:
    """<run>/checkpoints/<name> (LAST or BEST), else the same under its name before safetensors
    (a run from an older dlexp); None when the run has neither."""
    for candidate in (name, LEGACY_NAMES.get(name)):
        if candidate and (checkpoint_folder(run_dir) / candidate).is_file():
            return checkpoint_folder(run_dir) / candidate
    return None


class RunCheckpoints:
    """Saves the whole run every `every` steps, at the last step, and when asked to stop.

    In a data-parallel run every rank calls `save` at the same steps (the backend's state is a
    collective: every rank's RNG goes into it); only the rank that `writes` (rank 0) writes."""

    def __init__(
        self, run_dir: Path, every: int, max_steps: int, backend, sampler, generators, hooks=(),
        writes: bool = True,
    ):  # fmt: skip
        self.writes = writes
        self.folder = checkpoint_folder(run_dir)
        self.max_steps = max_steps  # recorded, so that a second resume keeps an extension
        self.every = every  # steps; 0: only at the last step and when stopped
        self.backend, self.sampler, self.generators = backend, sampler, generators
        self.hooks = [h for h in hooks if hasattr(h, "state_dict")]  # early stopping's counters
        self.saved_step = 0  # the step of the newest `last`
        self.best_step = 0  # the step of the newest `best`

    def due(self, step: int, is_last: bool) -> bool:
        return is_last or (self.every > 0 and step % self.every == 0)

    def save(self, step: int, result: FitResult, last: bool = True) -> None:
        """Write `last` (when `last`), and `best` when this step's evaluation is the best yet."""
        if step == 0:
            return  # nothing trained yet: nothing worth keeping
        writes_last = last and step != self.saved_step
        writes_best = result.best.get("best_step") == step != self.best_step
        if not (writes_last or writes_best):
            return
        arrays, meta = backend_state(self.backend, self.sampler, self.generators)
        meta["loop"] = {
            "step": step,
            "max_steps": self.max_steps,
            "result": {k: v for k, v in asdict(result).items() if k not in ("status", "reason")},
            "hooks": [h.state_dict() for h in self.hooks],
        }
        if self.writes:
            self.folder.mkdir(parents=True, exist_ok=True)
            if writes_last:
                save_checkpoint(self.folder / LAST, arrays, meta)
            if writes_best and writes_last:  # the same bytes: copy rather than serialise again
                write_atomically(self.folder / BEST, [(self.folder / LAST).read_bytes()])
            elif writes_best:
                save_checkpoint(self.folder / BEST, arrays, meta)
        self.saved_step = step if writes_last else self.saved_step
        self.best_step = step if writes_best else self.best_step

    def restore(self, path: Path, result: FitResult) -> int:
        """Load `path` into the run's objects and `result`; returns the step it was saved at."""
        loop = load_run_state(path, self.backend, self.sampler, self.generators)["loop"]
        for key, value in loop["result"].items():
            setattr(result, key, value)
        for hook, state in zip(self.hooks, loop["hooks"], strict=False):
            hook.load_state_dict(state)
        self.saved_step = loop["step"]
        self.best_step = result.best.get("best_step", 0)
        return loop["step"]
