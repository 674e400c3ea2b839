"""Console entry points around Hydra's main: user errors as one line on stderr, exit status 2.

Hydra composes the config, and handles `--version`, before the decorated function runs, and
prints its own errors over several lines. So the command is a plain function that asks Hydra to
raise (HYDRA_FULL_ERROR), and turns each user error into one line. HYDRA_FULL_ERROR=1 set by the
user still shows the whole traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

import dlexp
from dlexp.config import register_config
from dlexp.errors import failure_reason, job_user_errors, one_line, user_errors
from dlexp.run.signals import RunInterrupted
from dlexp.search import register_plugins
from dlexp.search.summary import SweepSummary

_USER_FULL_ERROR = "DLEXP_USER_HYDRA_FULL_ERROR"  # the user's own HYDRA_FULL_ERROR, kept aside
log = logging.getLogger("dlexp")


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_job(job: Callable, cfg, prog: str):
    """Run the job function inside Hydra. A single run's user error is one line and exit 2 (a
    bug keeps its traceback). In a sweep the job has recorded its failure in metrics.json; it
    logs the reason and returns, so that the other jobs run and the summary is written."""
    try:
        return job(cfg)
    except RunInterrupted as stopped:
        if callable(stopped.previous_handler):  # submitit's SIGUSR2 handler requeues the job
            stopped.previous_handler(stopped.signal, None)
        raise
    except Exception as err:
        if not _in_multirun():
            if isinstance(err, job_user_errors()):
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
    print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
    sys.exit(2)


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
    register_config()  # the schemas and resolvers conf/ needs
    register_plugins()  # dlexp's sweepers, which Hydra's scan misses in an editable install
    sys.argv[1:] = flags_first(sys.argv[1:])
    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ[_USER_FULL_ERROR] = previous or ""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing several lines
    try:
        hydra_main()
    except user_errors() as err:
        _exit_with_one_line(prog, err)
    except RunInterrupted as stopped:  # checkpoint and metrics.json are written
        SweepSummary.write_if_running()  # a stopped sweep still lists the jobs it ran
        print(f"{prog}: {stopped.message}", file=sys.stderr)
        sys.exit(stopped.exit_status)
    except KeyboardInterrupt as aborted:  # a second signal, or one outside a run: at once
        SweepSummary.write_if_running()
        reason = str(aborted) or "aborted"
        print(f"{prog}: {reason}; any checkpoint is in the run folder", file=sys.stderr)
        sys.exit(getattr(aborted, "exit_status", 130))
    finally:
        _restore_full_error(previous)
    failed = SweepSummary.last_failed
    if failed:  # after the summary is written, so that scripts notice
        print(f"{prog}: {failed} job(s) of the sweep failed; see the summary", file=sys.stderr)
        SweepSummary.last_failed = 0
        sys.exit(1)


def _restore_full_error(previous: str | None) -> None:
    """Put HYDRA_FULL_ERROR back as the user had it."""
    os.environ.pop(_USER_FULL_ERROR, None)
    if previous is None:
        os.environ.pop("HYDRA_FULL_ERROR", None)
    else:
        os.environ["HYDRA_FULL_ERROR"] = previous
