"""`resume=<run dir or checkpoint file>`: continue a run in its own folder, from its saved config.

Hydra's run folder for a resume is the original one (the `dlexp_run_dir` resolver in train.yaml),
and its composed config goes beside the original, in .hydra/resume-<n>/, so nothing is
overwritten. The run then takes its saved config; the command line may change only the keys in
RESUMABLE_KEYS, and repeating an equal value is fine.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose
from omegaconf import DictConfig, OmegaConf

from dlexp.errors import ConfigError
from dlexp.overrides import configures_hydra, override_key
from dlexp.run.checkpoint_file import load_checkpoint
from dlexp.run.checkpoints import LAST, checkpoint_folder, find_checkpoint
from dlexp.run.folder import read_overrides

# nothing the math depends on (the world size only through summation order: docs/distributed.md)
RESUMABLE_KEYS = ("max_steps", "device", "progress", "log_freq", "distributed")
# keys added to the config since a run was saved, with the value the run had without them
ADDED_KEYS = {"norm.sync": False, "distributed": {"nproc_per_node": 1, "backend": "auto"}}
FIXED_LENGTH_SCHEDULES = ("cosine", "onecycle")  # shaped by max_steps: cannot be extended
_subdirs: dict[str, str] = {}  # run dir -> its .hydra/resume-<n>, fixed once per process


def run_dir_of(target: str | Path) -> Path:
    """The run folder of a run folder, or of a checkpoint file inside <run>/checkpoints/."""
    path = Path(target).expanduser()
    if path.is_file() and path.parent.name == "checkpoints":
        return path.parent.parent
    return path


def hydra_run_dir(resume: str | None, fresh: str) -> str:
    """Resolver for hydra.run.dir: the resumed run's folder, else a fresh timestamped one."""
    if resume is None or not run_dir_of(resume).is_dir():
        return fresh  # a missing folder is refused in one line by the job
    return str(run_dir_of(resume))


def hydra_subdir(resume: str | None) -> str:
    """Resolver for hydra.output_subdir: .hydra, or .hydra/resume-<n> beside the original."""
    if resume is None or not run_dir_of(resume).is_dir():
        return ".hydra"
    run = str(run_dir_of(resume))
    if run not in _subdirs:  # Hydra resolves this more than once; count the folders once
        n = 1 + sum(1 for _ in (Path(run) / ".hydra").glob("resume-*"))
        _subdirs[run] = f".hydra/resume-{n}"
    return _subdirs[run]


def checkpoint_to_resume(target: str | Path) -> Path:
    """The checkpoint file that `resume=` names, or a one-line refusal."""
    path = Path(target).expanduser()
    if path.is_dir():
        found = find_checkpoint(path, LAST)
        if found is None:
            missing = checkpoint_folder(path) / LAST
            raise ConfigError(f"resume: {target} has no checkpoint ({missing} does not exist)")
        path = found
    elif not path.is_file():
        raise ConfigError(f"resume: {target} is neither a run folder nor a checkpoint file")
    return path


def _first_difference(a, b, key: str) -> str | None:
    """The first leaf key under `key` where the two values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in [*a, *(k for k in b if k not in a)]:
            found = _first_difference(a.get(k), b.get(k), f"{key}.{k}")
            if found:
                return found
        return None
    return None if a == b else key


def _outside_the_run(override: str) -> bool:
    """`resume=` itself and Hydra's own settings: not part of the resumed run's config."""
    return override_key(override) == "resume" or configures_hydra(override)


def _recomposed(run_dir: Path, new_overrides: list[str]) -> DictConfig:
    """The run's own command line with the new overrides after it, composed as Hydra would."""
    original = [o for o in read_overrides(run_dir, skip_plumbing=False) if not _outside_the_run(o)]
    return compose(config_name="train", overrides=[*original, *new_overrides])


def resumed_config(resume: str, command_line: list[str] | None) -> DictConfig:
    """The run's saved config, with the command line's RESUMABLE_KEYS applied. Any other
    override that changes a value is refused in one line naming the key. `command_line` is this
    process's overrides (None when train() is called from Python: the saved config as it is)."""
    run_dir = run_dir_of(resume)
    if not Path(resume).expanduser().exists():
        raise ConfigError(f"resume: {resume} is neither a run folder nor a checkpoint file")
    saved_file = run_dir / ".hydra" / "config.yaml"
    if not saved_file.is_file():
        raise ConfigError(f"resume: {run_dir} has no saved config ({saved_file})")
    checkpoint = checkpoint_to_resume(resume)
    loop = load_checkpoint(checkpoint)[1].get("loop", {})  # a bad file is refused here, first
    saved = OmegaConf.load(saved_file)
    for key, value in ADDED_KEYS.items():  # a run saved by an older dlexp
        if OmegaConf.select(saved, key) is None:
            OmegaConf.update(saved, key, value, merge=True)
    was = saved.max_steps = loop.get("max_steps", saved.max_steps)  # an earlier extension stays
    saved.output_dir = str(run_dir)  # Hydra's ${hydra:runtime.output_dir}, resolved outside Hydra
    new = [o for o in command_line or [] if not _outside_the_run(o)]
    if new:
        changed = _recomposed(run_dir, new)
        ignored = ("output_dir", "resume", *RESUMABLE_KEYS)
        a, b = (
            {k: v for k, v in OmegaConf.to_container(c, resolve=True).items() if k not in ignored}
            for c in (changed, saved)
        )
        differs = _first_difference(a, b, "")
        if differs:
            key = differs.lstrip(".")
            raise ConfigError(
                f"resume: {key} would be {OmegaConf.select(changed, key)!r} but the run being "
                f"resumed has {OmegaConf.select(saved, key)!r}; a resume may change only "
                f"{', '.join(RESUMABLE_KEYS)}"
            )
        for key in {override_key(o) for o in new}:
            if key.split(".")[0] in RESUMABLE_KEYS:  # distributed.nproc_per_node too
                OmegaConf.update(saved, key, OmegaConf.select(changed, key), merge=False)
    _check_length(saved, was, loop.get("step", 0))
    saved.resume = str(checkpoint)
    if "search" in saved:  # a resumed trial runs outside its study, whose trial has ended
        saved.search.trial = None
    return saved


def _check_length(saved: DictConfig, was: int, step: int) -> None:
    """max_steps may grow with a schedule of no fixed length, and must leave steps to run."""
    if saved.max_steps != was and saved.sched.name in FIXED_LENGTH_SCHEDULES:
        raise ConfigError(
            f"resume: sched={saved.sched.name} is shaped by max_steps={was}; "
            f"it cannot be run to {saved.max_steps} (sched=none or step can be extended)"
        )
    if step >= saved.max_steps:
        raise ConfigError(
            f"resume: the checkpoint is at step {step} and max_steps is {saved.max_steps}: "
            f"nothing to run; pass a larger max_steps to extend the run"
        )
