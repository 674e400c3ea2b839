"""The runs under some folders, as dlexp-runs lists them: where they are, how they stand (a run
without metrics.json is running or killed), when they started, and their filters and order."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from dlexp.errors import DlexpError, closest
from dlexp.report.plot import override_items
from dlexp.report.run_config import compared_config, config_text, flatten, resolved_config
from dlexp.run.environment import ENVIRONMENT_FILE, read_environment, still_running
from dlexp.run.record import STATUSES, read_job_record

RUN_MARKERS = (".hydra", "metrics.json", ENVIRONMENT_FILE)  # any of them makes a run folder
NOT_RUNS = ("mlflow-artifacts", "mlruns")  # MLflow's stores hold copies of metrics.json
LISTED_STATUSES = (*STATUSES, "running", "killed")
# What a single run refused before its first step left behind, before refused runs took their
# folder back (dlexp.run.folder.FolderAtStart): Hydra's files and dlexp's record, nothing else.
REFUSAL_LEFTOVERS = frozenset({".hydra", "train.log", "metrics.json", ENVIRONMENT_FILE})
FOLDER_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})_(\d{2}-\d{2}-\d{2})(?:_(\d{6}))?")  # runs/<stamp>


def find_runs(root: Path) -> list[Path]:
    """Run folders at or under `root`, in path order; a run's own subfolders are not searched."""
    if not root.is_dir():
        raise DlexpError(f"{root} is not a folder")
    found = []
    for folder, subfolders, files in os.walk(root):
        names = {*subfolders, *files}
        if any(marker in names for marker in RUN_MARKERS):
            found.append(Path(folder))
            subfolders.clear()
            continue
        subfolders[:] = sorted(s for s in subfolders if not s.startswith(".") and s not in NOT_RUNS)
    return sorted(found)


def is_refusal_leftover(folder: Path, record: dict) -> bool:
    """A single run's folder that an older dlexp left when it refused the config: failed at
    step 0, no curves and no checkpoint. A sweep's refused job is a failed job and stays."""
    if record.get("status") != "failed" or record.get("steps") != 0:
        return False
    if (folder.parent / "multirun.yaml").is_file():
        return False
    return {p.name for p in folder.iterdir()} <= REFUSAL_LEFTOVERS


def started_at(folder: Path) -> datetime | None:
    """When the run started: the stamp in a single run's folder name, else when Hydra wrote its
    .hydra/ files (a sweep's job), else when dlexp wrote environment.json or metrics.json."""
    match = FOLDER_STAMP.fullmatch(folder.name)
    if match:
        day, time, micro = match.groups()
        return datetime.strptime(f"{day} {time} {micro or 0}", "%Y-%m-%d %H-%M-%S %f").astimezone()
    for name in (".hydra/hydra.yaml", ".hydra/overrides.yaml", ENVIRONMENT_FILE, "metrics.json"):
        if (folder / name).is_file():
            return datetime.fromtimestamp((folder / name).stat().st_mtime).astimezone()
    return None


@dataclass
class ListedRun:
    """One run folder as dlexp-runs shows it."""

    name: str  # relative to the folder it was found under
    path: Path
    status: str
    record: dict  # metrics.json (only a `reason` for a running or killed run)
    started: datetime | None
    task: str
    overrides: dict[str, str]  # plumbing left out
    config: dict[str, object]  # the resolved config's dotted keys, plumbing left out

    @property
    def final(self) -> dict:
        return self.record.get("final") or {}

    @property
    def best(self) -> dict:
        return self.record.get("best") or {}

    @property
    def wall_s(self) -> float | None:
        return (self.record.get("timing") or {}).get("wall_s")

    def value(self, key: str):
        """A sort or filter key: a column, a metric (`test/accuracy` final, `best.val/accuracy`),
        an override (`model`) or a config key (`optim.lr`); None when the run has none."""
        if key in ("name", "status", "task", "started", "wall_s"):
            return getattr(self, key)
        if key in ("objective", "steps"):
            return self.record.get(key)
        if key.startswith("best."):
            return self.best.get(key.removeprefix("best."))
        if key in self.final:
            return self.final[key]
        return self.config.get(key, self.overrides.get(key))


def process_text(folder: Path, pid: int | None) -> str:
    """Why a run without metrics.json reads as running or killed."""
    host = read_environment(folder).get("host")
    if pid is not None:
        return f"its process {pid} runs on this host"
    if host and host != socket.gethostname():
        return f"it ran on {host}, where this host cannot tell whether it still runs"
    return "its process is gone"


def read_listed_run(root: Path, folder: Path) -> ListedRun | None:
    """The run in `folder` (found under `root`); None for what a refused config left behind."""
    if (folder / "metrics.json").is_file():
        record = read_job_record(folder)
        status = record.get("status", "completed")
        if is_refusal_leftover(folder, record):
            return None
    else:
        pid = still_running(folder)
        status = "killed" if pid is None else "running"
        record = {"reason": f"no metrics.json: {process_text(folder, pid)}"}
    flat = flatten(resolved_config(folder))
    name = folder.relative_to(root).as_posix() if folder != root else folder.name
    return ListedRun(
        name=name or folder.resolve().name,
        path=folder,
        status=status,
        record=record,
        started=started_at(folder),
        task=str(flat.get("task_name") or ""),
        overrides=override_items(folder),
        config=compared_config(folder, flat),
    )


def list_runs(roots: list[Path]) -> list[ListedRun]:
    runs = [read_listed_run(root, folder) for root in roots for folder in find_runs(root)]
    return [run for run in runs if run is not None]


def parse_where(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise DlexpError(f"--where {text}: expected key=value, as in --where optim.lr=0.001")
    return key.strip(), value.strip()


def parsed(text: str):
    """A filter's value as YAML reads it (`[100]`, `true`), numbers in any spelling (`1e-3`)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(text)
        except ValueError:
            return value
    return value


def matches(run: ListedRun, key: str, wanted: str) -> bool:
    """Whether the run's override or resolved config value of `key` is `wanted` (`1e-3` is
    `0.001`, `[100]` is the list)."""
    given = run.overrides.get(key)
    if given is not None and (given == wanted or parsed(given) == parsed(wanted)):
        return True
    if key in run.config:
        actual = run.config[key]
        return config_text(actual) == wanted or parsed(wanted) == actual
    return False


def known_keys(runs: list[ListedRun]) -> set[str]:
    return {k for run in runs for k in (*run.overrides, *run.config)}


def filter_runs(runs, statuses=(), tasks=(), where=()) -> list[ListedRun]:
    """The runs with one of `statuses`, of one of `tasks`, whose every `key=value` holds."""
    for status in statuses:
        if status not in LISTED_STATUSES:
            hint = closest(status, LISTED_STATUSES)
            raise DlexpError(
                f"--status {status}: no such status{hint} ({', '.join(LISTED_STATUSES)})"
            )
    pairs = [parse_where(w) for w in where]
    keys = known_keys(runs)
    for key, _ in pairs:
        if runs and key not in keys:
            raise DlexpError(f"--where {key}: no listed run has this key{closest(key, keys)}")
    return [
        run
        for run in runs
        if (not statuses or run.status in statuses)
        and (not tasks or run.task in tasks)
        and all(matches(run, key, value) for key, value in pairs)
    ]


def sort_runs(runs: list[ListedRun], key: str, reverse: bool = False) -> list[ListedRun]:
    """By `key`, runs without it last; a metric best first (a loss low first), else ascending."""
    if runs and all(run.value(key) is None for run in runs):
        raise DlexpError(
            f"--sort {key}: no listed run has this key{closest(key, known_keys(runs))}"
        )
    metric = key == "objective" or "/" in key
    descending = metric and not key.endswith("loss")
    if key == "objective":
        descending = not str(runs[0].record.get("optimized_metric", "")).endswith("loss")
    present = [run for run in runs if run.value(key) is not None]
    ordered = sorted(present, key=lambda run: sort_value(run.value(key)), reverse=descending)
    if reverse:
        ordered.reverse()
    return ordered + [run for run in runs if run.value(key) is None]


def sort_value(value):
    """Numbers by size, everything else by its text (lists, strings, datetimes stay apart)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    if isinstance(value, datetime):
        return (1, value.timestamp(), "")
    return (2, 0.0, config_text(value))
