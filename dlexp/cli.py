"""Console entry points around Hydra's main: user errors as one line on stderr, exit status 2.

Hydra composes the config, and handles `--version`, before the decorated function runs, and
prints its own errors over several lines. So the command is a plain function that asks Hydra to
raise (HYDRA_FULL_ERROR), and turns each user error into one line. HYDRA_FULL_ERROR=1 set by the
user still shows the whole traceback.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

import dlexp
from dlexp.config import register_config
from dlexp.distributed import agreement, launch, process_group
from dlexp.errors import ConfigError, failure_reason, job_user_errors, one_line, user_errors
from dlexp.overrides import COURSE_FLAGS, course_override, expand_home
from dlexp.run.checkpoints import LAST, find_checkpoint
from dlexp.run.folder import FolderAtStart
from dlexp.run.signals import RunInterrupted
from dlexp.search import register_plugins
from dlexp.search.summary import SweepSummary
from dlexp.search.sweep_resume import resumed_sweep_args

_USER_FULL_ERROR = "DLEXP_USER_HYDRA_FULL_ERROR"  # the user's own HYDRA_FULL_ERROR, kept aside
log = logging.getLogger("dlexp")


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _folder_at_start() -> FolderAtStart | None:
    """A single run's folder as Hydra made it, before the job writes anything."""
    if not HydraConfig.initialized() or _in_multirun():
        return None
    hydra_cfg = HydraConfig.get()
    return FolderAtStart.look(
        Path(hydra_cfg.runtime.output_dir), hydra_cfg.output_subdir or ".hydra",
        f"{hydra_cfg.job.name}.log",
    )  # fmt: skip


def run_job(job: Callable, cfg, prog: str):
    """Run the job function inside Hydra. A single run's user error is one line and exit 2 (a
    bug keeps its traceback), and takes back what the run added to its folder: a refused run
    leaves no folder, a refused resume leaves the resumed run's folder as it was. In a sweep
    the job has recorded its failure in metrics.json; it logs the reason and returns, so that
    the other jobs run and the summary is written."""
    at_start = _folder_at_start()
    try:
        return job(cfg)
    except launch.RankFailed as failed:  # recorded, its traceback logged: one line, exit 1
        if _in_multirun():
            log.error("job failed: %s", failed)
            return None
        print(f"{prog}: {failed}", file=sys.stderr)
        sys.exit(1)
    except RunInterrupted as stopped:
        if callable(stopped.previous_handler):  # submitit's SIGUSR2 handler requeues the job
            stopped.previous_handler(stopped.signal, None)
        raise
    except Exception as err:
        if not _in_multirun():
            if isinstance(err, job_user_errors()):
                if at_start is not None and not _user_wants_traceback():
                    at_start.undo()  # refused before its first step: nothing to keep
                _exit_with_one_line(prog, err)
            raise
        if isinstance(err, job_user_errors()) and not _user_wants_traceback():
            log.error("job failed: %s", one_line(err))
        else:  # a bug: keep the traceback in the job's log
            log.exception("job failed: %s", failure_reason(err))
        return None


def _user_wants_traceback() -> bool:
    return os.environ.get(_USER_FULL_ERROR, os.environ.get("HYDRA_FULL_ERROR")) == "1"


def _exit_with_one_line(prog: str, err: BaseException) -> None:
    """Print `prog: error: <one line>` and exit 2; re-raise when the user set HYDRA_FULL_ERROR=1."""
    if _user_wants_traceback():
        raise err
    print(f"{prog}: error: {one_line(err, sys.argv[1:])}", file=sys.stderr)
    sys.exit(2)


def refuse(prog: str, message: str) -> None:
    """A user error found outside Hydra: `prog: error: <message>` on stderr, and exit 2."""
    _exit_with_one_line(prog, ConfigError(message))


# Hydra's own flags (its argparse parser); any other flag gets one line, not a usage block.
HYDRA_FLAGS = ("-h", "--help", "--hydra-help", "--version", "-c", "--cfg", "-r", "--resolve",
               "-p", "--package", "--run", "-m", "--multirun", "-sc", "--shell-completion",
               "-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir",
               "--experimental-rerun", "-i", "--info")  # fmt: skip


MODES = {"-m": "-m", "--multirun": "-m", "-c": "--cfg", "--cfg": "--cfg", "-i": "--info",
         "--info": "--info", "--run": "--run", "-r": "--run"}  # fmt: skip  # Hydra runs one


def unknown_flag(args: list[str]) -> str | None:
    """The one line for the first flag that is not Hydra's: a course script's flag gets the
    override to write instead (dlexp.overrides.COURSE_FLAGS), any other the pointer to --help;
    and for two of Hydra's modes at once (a traceback from Hydra)."""
    modes = {MODES[a] for a in args if a in MODES}
    if len(modes) > 1:
        return f"{' and '.join(sorted(modes))} cannot be used together; use one of them"
    for i, arg in enumerate(args):
        if arg == "--":
            return None
        flag, has_value, value = arg.partition("=")
        if not flag.startswith("-") or flag in HYDRA_FLAGS or (i and args[i - 1] in VALUE_FLAGS):
            continue
        if flag in COURSE_FLAGS:
            if not has_value:
                value = args[i + 1] if i + 1 < len(args) else "..."
            override = course_override(flag, value)
            return f"{flag} is a flag of the course's scripts; dlexp-train takes {override}"
        return f"unknown flag {flag}; settings are key=value overrides (see --help)"
    return None


def resolvable(args: list[str]) -> list[str]:
    """`--cfg job --resolve` resolves output_dir, `${hydra:runtime.output_dir}`, which Hydra sets
    only when a job runs: Hydra's runtime.output_dir is given the run folder that a run would
    get (an override of Hydra's own config, so the job's overrides stay as typed)."""
    shows = any(a in ("-c", "--cfg") for a in args) and "--resolve" in args
    if not shows or any(a.startswith("hydra.runtime.output_dir=") for a in args):
        return args
    return [*args, "hydra.runtime.output_dir=${hydra:run.dir}"]


_RESUME_LINE = re.compile(r"^(?P<why>.*); resume with: \S+ resume=(?P<run>.+)$")


def stopped_line(message: str, prog: str, typed: list[str]) -> str:
    """A stopped run's line; stopped before its first checkpoint, there is nothing to resume:
    the line gives the command that reruns it instead."""
    match = _RESUME_LINE.match(message)
    if not match or find_checkpoint(Path(match["run"]), LAST) is not None:
        return message
    rerun = shlex.join([prog, *typed])
    return f"{match['why']}: nothing to resume before the first step; rerun with: {rerun}"


MOVABLE_FLAGS = ("-m", "--multirun")  # no value of their own: safe to move
# Hydra's flags whose next argument is their value (never a flag to move); --info's is optional.
VALUE_FLAGS = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir",
               "-c", "--cfg", "-p", "--package", "--experimental-rerun")  # fmt: skip
OPTIONAL_VALUE_FLAGS = ("-i", "--info")


def flags_first(args: list[str]) -> list[str]:
    """`-m` after overrides (`dlexp-train model=x -m lr=1,2`) moved before them: Hydra's parser
    takes the overrides as one positional list and refuses a flag in the middle of it. A flag's
    value and everything after `--` stay as they are."""
    moved, rest, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        takes_value = arg in VALUE_FLAGS or (
            arg in OPTIONAL_VALUE_FLAGS
            and i + 1 < len(args)
            and not args[i + 1].startswith("-")
            and "=" not in args[i + 1]
        )
        if takes_value:
            rest += args[i : i + 2]
            i += 2
            continue
        (moved if arg in MOVABLE_FLAGS else rest).append(arg)
        i += 1
    return moved + rest


def run_cli(hydra_main: Callable[[], object], prog: str) -> None:
    """Run a @hydra.main function as a command; user errors exit 2 with one line on stderr."""
    if "--version" in sys.argv[1:]:
        print(f"{prog} (dlexp) {dlexp.__version__}")
        return
    typed = sys.argv[1:]
    flag = unknown_flag(typed)
    if flag:
        _exit_with_one_line(prog, ConfigError(flag))
    register_config()  # the schemas and resolvers conf/ needs
    register_plugins()  # dlexp's sweepers, which Hydra's scan misses in an editable install
    try:
        args = resumed_sweep_args(typed)  # resume=<sweep folder>: that sweep's own command
    except ConfigError as err:
        _exit_with_one_line(prog, err)
    sys.argv[1:] = resolvable([expand_home(a) for a in flags_first(args)])
    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ[_USER_FULL_ERROR] = previous or ""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing several lines
    try:
        hydra_main()
    except BrokenPipeError:  # `dlexp-train --help | head`: the reader stopped reading
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit would fail again
        sys.exit(141)  # 128 + SIGPIPE, as a command killed by the closed pipe exits
    except user_errors() as err:
        _exit_with_one_line(prog, err)
    except RunInterrupted as stopped:  # checkpoint and metrics.json are written
        sweep = SweepSummary.running
        SweepSummary.write_if_running()  # a stopped sweep still lists the jobs it ran
        line = stopped_line(stopped.message, prog, typed)
        print(f"{prog}: {_sweep_resume_line(prog, sweep) or line}", file=sys.stderr)
        sys.exit(stopped.exit_status)
    except KeyboardInterrupt as aborted:  # a second signal, a sweep's, or one outside a run
        sweep = SweepSummary.running
        SweepSummary.write_if_running()
        reason = str(aborted) or "aborted"
        line = f"{reason}; any checkpoint is in the run folder"
        print(f"{prog}: {_sweep_resume_line(prog, sweep) or line}", file=sys.stderr)
        sys.exit(getattr(aborted, "exit_status", 130))
    finally:
        _restore_full_error(previous)
    failed = SweepSummary.last_failed
    if failed:  # after the summary is written, so that scripts notice
        print(f"{prog}: {failed} job(s) of the sweep failed; see the summary", file=sys.stderr)
        SweepSummary.last_failed = 0
        sys.exit(1)


def _sweep_resume_line(prog: str, sweep: Path | None) -> str | None:
    """A stopped sweep's line: the command that finishes it (dlexp.search.sweep_resume)."""
    if sweep is None:
        return None
    return f"the sweep stopped; finish it with: {prog} resume={sweep}"


def _restore_full_error(previous: str | None) -> None:
    """Put HYDRA_FULL_ERROR back as the user had it."""
    os.environ.pop(_USER_FULL_ERROR, None)
    if previous is None:
        os.environ.pop("HYDRA_FULL_ERROR", None)
    else:
        os.environ["HYDRA_FULL_ERROR"] = previous


def run_cli_as_rank(hydra_main: Callable, prog: str, ranks, follow: Callable) -> None:
    """The command on each of torchrun's ranks: rank 0 runs it as run_cli does, one run only, and
    sends its config to the others (dlexp.training); they never start Hydra, and `follow(config,
    ranks)` trains with rank 0's config in its folder."""
    process_group.die_with_parent()  # torchrun starts its ranks in sessions of their own
    import torch  # a torchrun rank trains a torch model; CUDA decides the group's backend

    ranks = process_group.join_process_group(ranks, "nccl" if torch.cuda.is_available() else "gloo")
    try:
        if not ranks.writes:
            received = agreement.receive_run_config()
            if received is not None:  # else rank 0 ran nothing: --help, a refusal
                try:
                    follow(received, ranks)
                except job_user_errors():  # rank 0, with the same config, has said it
                    sys.exit(2)
            # Done: every collective of the run is behind it. It leaves at once, without
            # tearing down gloo's connections while rank 0 still writes (that aborted a rank).
            process_group.exit_now(0)
        if any(arg in MOVABLE_FLAGS for arg in sys.argv[1:]):
            refuse(prog, f"-m under torchrun: one run at a time; sweep with {prog} -m "
                   f"distributed.nproc_per_node=N ... instead")  # fmt: skip
        run_cli(hydra_main, prog)
    except RunInterrupted as stopped:  # a rank above 0: rank 0 has printed the line
        sys.exit(stopped.exit_status)
    finally:
        if ranks.writes and not agreement.config_was_sent():
            agreement.send_run_config(None)  # no run came: the other ranks stop waiting
        process_group.leave_process_group()
