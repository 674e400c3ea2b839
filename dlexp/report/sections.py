"""What a report says, in order: the sections of a run's report and of a sweep's report."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from dlexp.report.collect import ReportInput, RunRecord
from dlexp.report.figures import Figure
from dlexp.report.group_tables import ABOUT, groups_table
from dlexp.report.plot import short_names
from dlexp.report.render import Code, Document, Image, Section, Table, Text
from dlexp.run.tensorboard import run_name

TIMING_UNITS = {
    "wall_s": "s",
    "startup_s": "s",
    "eval_s": "s",
    "compile_s": "s",
    "steps_per_s": "steps/s",
}
TABLE_FINALS = ("val/accuracy", "test/accuracy")  # final values the sweep table shows


def number(value) -> str:
    """Floats to 4 significant digits; anything else as it is; missing as a dash."""
    if value is None or value == "":
        return "–"
    return format(value, ".4g") if isinstance(value, float) else str(value)


def param_text(value: str) -> str:
    """A swept float as 4 significant digits (Optuna draws 0.0028706222962640985)."""
    try:
        return format(float(value), ".4g") if len(value) > 8 else value
    except ValueError:
        return value


def outcome_table(run: RunRecord, metric: str) -> Table:
    rows = [["status", run.status], ["steps", number(run.steps)]]
    if run.reason:
        rows.append(["reason", run.reason])
    rows.append([f"selected on {metric}", number(run.value(metric))])
    return Table(
        ["outcome", ""],
        rows,
        [run.status if run.status != "completed" else ""] + [""] * (len(rows) - 1),
    )


def metrics_table(run: RunRecord) -> Table:
    """Final and best value of each metric; best_step says when the best was."""
    names = list(dict.fromkeys([*run.final, *(k for k in run.best if k != "best_step")]))
    rows = [[m, number(run.final.get(m)), number(run.best.get(m))] for m in sorted(names)]
    best_step = run.best.get("best_step")
    header = ["metric", "final", f"best (step {best_step})" if best_step is not None else "best"]
    return Table(header, rows)


def timing_table(run: RunRecord) -> Table:
    rows = [["device", run.device]]
    for key, value in run.timing.items():
        unit = TIMING_UNITS.get(key, "")
        rows.append([key, f"{number(value)} {unit}".strip()])
    return Table(["timing and device", ""], rows)


def environment_table(env: dict) -> Table:
    """What made the run: command, git commit, versions, host (environment.json)."""
    git = env.get("git")
    versions = env.get("versions") or {}
    rows = [
        ["command", " ".join(env.get("command") or [])],
        ["working directory", env.get("cwd", "")],
        ["git commit", f"{git['commit']}{' (dirty)' if git['dirty'] else ''}" if git else "none"],
        *([name, str(version)] for name, version in versions.items() if version),
        ["threads", number(env.get("threads"))],
        ["host (pid)", f"{env.get('host', '')} ({env.get('pid', '')})"],
    ]
    return Table(["environment", ""], rows)


def overrides_table(run: RunRecord) -> Table:
    return Table(["override", "value"], [[k, v] for k, v in run.params.items()])


def images(figures: list[Figure]) -> list[Image]:
    return [Image(png, caption) for png, caption in figures]


def warnings_section(runs: list[RunRecord], is_sweep: bool) -> list[Section]:
    """The warnings runs recorded in metrics.json, one row each; nothing when there are none."""
    rows = [[run.name, text] if is_sweep else [text] for run in runs for text in run.warnings]
    if not rows:
        return []
    return [Section("Warnings", [Table(["job", "warning"] if is_sweep else ["warning"], rows)])]


def run_sections(report: ReportInput, curves: list[Figure]) -> list[Section]:
    run = report.runs[0]
    what = [Code(report.command)]
    if run.params:
        what.append(overrides_table(run))
    sections = [
        Section("Command and overrides", what),
        Section("Outcome", [outcome_table(run, report.metric)]),
        *warnings_section(report.runs, is_sweep=False),
    ]
    if run.final or run.best:
        sections.append(Section("Final and best metrics", [metrics_table(run)]))
    if curves:
        sections.append(Section("Curves", images(curves)))
    sections.append(Section("Timing and device", [timing_table(run)]))
    if run.environment:
        sections.append(Section("Environment", [environment_table(run.environment)]))
    sections.append(
        Section("Resolved config", [Code(run.config_yaml or "(no .hydra/config.yaml)")])
    )
    return sections


def runs_table(report: ReportInput) -> Table:
    """Every job, best first by the selection metric; failed and pruned ones with their reason."""
    names = short_names(report.swept)
    header = ["#", "job", "status", *(names[k] for k in report.swept), f"best {report.metric}"]
    header += [f"final {m}" for m in TABLE_FINALS] + ["steps", "wall (s)", "reason"]
    best = report.best
    rows, classes = [], []
    for rank, run in enumerate(report.runs, start=1):
        params = [param_text(run.params.get(k, "(default)")) for k in report.swept]
        finals = [number(run.final.get(m)) for m in TABLE_FINALS]
        wall = number(run.timing.get("wall_s"))
        value = number(run.value(report.metric))
        rows.append([str(rank), run.name, run.status, *params, value, *finals,
                     number(run.steps), wall, run.reason])  # fmt: skip
        classes.append("best" if run is best else run.status)
    return Table(header, rows, classes)


def tally(report: ReportInput) -> str:
    counts = Counter(r.status for r in report.runs)
    jobs = ", ".join(f"{n} {status}" for status, n in counts.items())
    direction = "higher" if report.maximize else "lower"
    return f"{len(report.runs)} jobs ({jobs}), selected on {report.metric} ({direction} is better)."


def groups_section(report: ReportInput, group_curves: list[Figure]) -> list[Section]:
    """The seed groups by their mean selection metric, and their mean curves."""
    if not report.groups:
        return []
    if all(len(g.members) == 1 for g in report.groups):
        return [Section("Seed groups", [Text("No two runs differ only in their seed (n=1 each).")])]
    blocks = [Text(ABOUT), groups_table(report.groups), *images(group_curves)]
    return [Section(f"Seed groups by {report.metric}", blocks)]


def sweep_sections(
    report: ReportInput,
    curves: list[Figure],
    scatters: list[Figure],
    group_curves: list[Figure] = (),
) -> list[Section]:
    best = report.best
    sections = [
        Section("Command", [Code(report.command), Text(tally(report))]),
        Section(f"Runs by {report.metric}", [runs_table(report)]),
        *groups_section(report, list(group_curves)),
        *warnings_section(report.runs, is_sweep=True),
    ]
    if best is not None:
        sections.append(
            Section(
                f"Best run: job {best.name}",
                [
                    Text(f"Folder: {best.folder.relative_to(report.folder).as_posix()}"),
                    overrides_table(best),
                    metrics_table(best),
                    timing_table(best),
                ],
            )
        )
    if curves:
        sections.append(Section("Curves of the top runs", images(curves)))
    if scatters:
        sections.append(Section(f"Parameters against {report.metric}", images(scatters)))
    search = images([(png, png.stem.replace("_", " ")) for png in report.search_pngs])
    if report.best_preset:
        search += [
            Text("best.yaml, the preset that reproduces the best trial:"),
            Code(report.best_preset),
        ]
    if search:
        sections.append(Section("Search", search))
    if best is not None:
        shown = Text(f"The resolved config of job {best.name} ({best.folder.name}):")
        sections.append(Section("Best config", [shown, Code(best.config_yaml)]))
    else:
        sections.append(
            Section("Best config", [Text("No run finished with a value to select on.")])
        )
    return sections


def build_document(
    report: ReportInput,
    curves: list[Figure],
    scatters: list[Figure],
    now: datetime,
    group_curves: list[Figure] = (),
) -> Document:
    kind = "Sweep" if report.is_sweep else "Run"
    subtitle = (
        f"{run_name(report.folder)} · written {now:%Y-%m-%d %H:%M}"  # as TensorBoard names it
    )
    if report.is_sweep:
        sections = sweep_sections(report, curves, scatters, group_curves)
    else:
        sections = run_sections(report, curves)
    return Document(f"{kind} report: {report.folder.resolve().name}", subtitle, sections)
