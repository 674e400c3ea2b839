"""Reading a run or sweep folder back into what a report shows: runs, command, selection metric."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from dlexp.errors import DlexpError
from dlexp.report.plot import differing_keys, override_items
from dlexp.report.run_config import resolved_config
from dlexp.report.run_listing import is_refusal_leftover
from dlexp.report.seed_groups import SeedGroup, group_runs, read_member
from dlexp.run.environment import read_environment
from dlexp.run.folder import job_number
from dlexp.run.record import metric_direction, read_job_record
from dlexp.search.summary import collect_jobs

UNSELECTABLE = ("failed", "pruned", "interrupted")  # never "the best run", whatever their value
SEARCH_PNGS = ("optimization_history.png", "param_importances.png")  # the Optuna sweeper's


@dataclass
class RunRecord:
    """One run folder as metrics.json and .hydra/ left it."""

    folder: Path
    status: str
    reason: str
    steps: int | str
    params: dict[str, str]  # its overrides, plumbing left out: `optim.lr` -> `0.001`
    final: dict
    best: dict
    timing: dict
    device: str
    config_yaml: str
    has_curves: bool
    environment: dict  # environment.json: what made the run ({} for runs from before it)
    warnings: list[str] = field(default_factory=list)  # metrics.json's, when the run had any

    @property
    def name(self) -> str:
        """The job number in a sweep (folders are `<number>_<overrides>`), else the folder name."""
        number = job_number(self.folder)
        return self.folder.name if number is None else str(number)

    def value(self, metric: str) -> float | None:
        """The metric the run is selected on: its best evaluation, else its last value."""
        value = self.best.get(metric, self.final.get(metric))
        return None if value is None else float(value)


@dataclass
class ReportInput:
    """Everything a report needs; `runs` is sorted by the selection metric, best first."""

    folder: Path
    is_sweep: bool
    command: str
    metric: str
    maximize: bool
    runs: list[RunRecord]
    swept: list[str] = field(default_factory=list)  # override keys that vary across jobs
    search_pngs: list[Path] = field(default_factory=list)
    best_preset: str | None = None
    groups: list[SeedGroup] = field(default_factory=list)  # seed groups, best mean first

    @property
    def best(self) -> RunRecord | None:
        """The best run that finished (completed or stopped early) with a value."""
        return next(
            (
                r
                for r in self.runs
                if r.status not in UNSELECTABLE and r.value(self.metric) is not None
            ),
            None,
        )


def read_run(folder: Path) -> RunRecord:
    """A run folder; a run that left no metrics.json reads as failed (read_job_record)."""
    record = read_job_record(folder)
    config = resolved_config(folder)
    environment = read_environment(folder)
    device = environment.get("device") and f"{environment['device']} ({environment['name']})"
    if not device:
        device = f"{config.get('device', 'unknown')} (as configured)"
    return RunRecord(
        folder=folder,
        status=record.get("status", "completed"),
        reason=record.get("reason", ""),
        steps=record.get("steps", ""),
        params=override_items(folder),
        final=record.get("final") or {},
        best=record.get("best") or {},
        timing=record.get("timing") or {},
        device=str(device),
        config_yaml=OmegaConf.to_yaml(config) if config else "",
        has_curves=any(folder.glob("events.out.tfevents.*")),
        environment=environment,
        warnings=[str(w) for w in record.get("warnings") or []],
    )


def recorded_command(hydra_yaml: Path, multirun: bool) -> str:
    """The `dlexp-train` line that Hydra recorded (its own bookkeeping overrides left out)."""
    if not hydra_yaml.is_file():
        return "(not recorded)"
    overrides = (yaml.safe_load(hydra_yaml.read_text()) or {}).get("hydra", {}).get("overrides", {})
    hydra_part = [o for o in overrides.get("hydra") or [] if not o.startswith("hydra.mode=")]
    if not multirun:  # one job of a sweep is reproduced on its own, outside the sweep folder
        hydra_part = [o for o in hydra_part if not o.startswith("hydra.sweep.")]
    words = [
        "dlexp-train",
        *(["-m"] if multirun else []),
        *hydra_part,
        *(overrides.get("task") or []),
    ]
    return " ".join(shlex.quote(w) for w in words)


def selection_metric(config: dict) -> tuple[str, bool]:
    """The optimized_metric (on val when the config names a test metric) and whether it rises."""
    metric = config.get("optimized_metric") or "val/accuracy"
    if metric.startswith("test/"):  # selection never looks at test
        metric = "val/" + metric.split("/", 1)[1]
    return metric, metric_direction(metric) == "maximize"


def sorted_runs(runs: list[RunRecord], metric: str, maximize: bool) -> list[RunRecord]:
    """Best first; runs without a value (failed) last, in their job order."""

    def key(run: RunRecord):
        value = run.value(metric)
        return (value is None, 0.0 if value is None else (-value if maximize else value))

    return sorted(runs, key=key)


def read_folder(folder: Path) -> ReportInput:
    """A run folder (with .hydra/ or metrics.json) or a sweep folder (job folders with .hydra/)."""
    if not folder.is_dir():
        raise DlexpError(f"{folder} is not a folder")
    if (folder / ".hydra").is_dir() or (folder / "metrics.json").is_file():
        run = read_run(folder)
        metric, maximize = selection_metric(resolved_config(folder))
        command = recorded_command(folder / ".hydra" / "hydra.yaml", multirun=False)
        return ReportInput(folder, False, command, metric, maximize, [run])
    job_dirs = [folder / row["run_dir"] for row in collect_jobs(folder)]
    if not (folder / "multirun.yaml").is_file():  # a folder of single runs, not a sweep
        job_dirs = [job for job in job_dirs if not is_refusal_leftover(job, read_job_record(job))]
    if not job_dirs:
        raise DlexpError(f"{folder} holds no run: neither .hydra/ nor job folders with .hydra/")
    runs = [read_run(job) for job in job_dirs]
    multirun_yaml = folder / "multirun.yaml"
    config = (yaml.safe_load(multirun_yaml.read_text()) or {}) if multirun_yaml.is_file() else {}
    metric, maximize = selection_metric(config or resolved_config(job_dirs[0]))
    preset = folder / "best.yaml"
    return ReportInput(
        folder,
        True,
        recorded_command(multirun_yaml, multirun=True),
        metric,
        maximize,
        sorted_runs(runs, metric, maximize),
        swept=differing_keys(job_dirs),
        search_pngs=[folder / n for n in SEARCH_PNGS if (folder / n).is_file()],
        best_preset=preset.read_text() if preset.is_file() else None,
        groups=sorted_groups(group_runs([read_member(job) for job in job_dirs]), metric, maximize),
    )


def sorted_groups(groups: list[SeedGroup], metric: str, maximize: bool) -> list[SeedGroup]:
    """Best mean of the selection metric (its best, else its final value) first; groups without
    a finished run last."""

    def key(group: SeedGroup):
        e = group.statistics.get(f"best {metric}") or group.statistics.get(f"final {metric}")
        return (e is None, 0.0 if e is None else (-e.mean if maximize else e.mean))

    return sorted(groups, key=key)
