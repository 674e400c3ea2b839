"""What a search leaves in its sweep folder: trials.csv, trials.md and the Optuna plots.

Rows come from the study's storage, so they cover every trial, those of other processes and
earlier runs included. Each trial carries its job's folder, status and steps in user attributes.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from pathlib import Path

from dlexp.errors import ConfigError
from dlexp.search.best_preset import write_best_preset
from dlexp.search.search_space import override_text
from dlexp.search.summary import write_table
from dlexp.search.sweep_resume import retry_origin

log = logging.getLogger(__name__)


def relative_folder(job_dir: str, sweep_dir: Path) -> str:
    """A trial's job folder as trials.md names it: relative to the sweep folder, where the table
    lies, like summary.md's (a folder outside it stays as recorded)."""
    if not job_dir:
        return ""
    path = Path(job_dir)
    try:
        return path.absolute().relative_to(sweep_dir.absolute()).as_posix()
    except ValueError:
        return job_dir


def _retried_as(number: int, retries: dict) -> str:
    return f"asked again as trial {retries[number]}" if number in retries else ""


def trial_rows(study, sweep_dir: Path) -> list[dict]:
    """One row per trial: number, state, value, steps run, params, job folder, reason, and the
    trial it retries (a failed trial's reason names its retry)."""
    keys = sorted({k for t in study.get_trials(deepcopy=False) for k in t.params})
    retries = {retry_origin(t): t.number for t in study.get_trials(deepcopy=False)}
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": "" if t.value is None else t.value,
                "steps": attrs.get("steps", ""),
                **{k: t.params.get(k, "") for k in keys},
                "job_dir": relative_folder(attrs.get("job_dir", ""), sweep_dir),
                "reason": attrs.get("reason", "") or _retried_as(t.number, retries),
                "retry_of": "" if retry_origin(t) is None else retry_origin(t),
            }
        )
    return rows


def write_trials_table(study, sweep_dir: Path) -> list[dict]:
    """trials.csv and trials.md; returns the rows."""
    rows = trial_rows(study, sweep_dir)
    if rows:
        write_table(rows, sweep_dir, "trials", ".4g")
    return rows


def write_plots(study, sweep_dir: Path) -> list[Path]:
    """optimization_history.png, and param_importances.png when two trials are complete."""
    # matplotlib and Optuna: only when a search writes its outputs
    import matplotlib

    matplotlib.use("Agg")
    font_log = logging.getLogger("matplotlib.font_manager")
    level, _ = font_log.level, font_log.setLevel(logging.WARNING)  # not "generated new fontManager"
    import matplotlib.pyplot as plt  # (as above: after use("Agg"))

    font_log.setLevel(level)
    import optuna  # (as above)
    from optuna.visualization import matplotlib as optuna_plots  # (as above)

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    plots = {"optimization_history.png": optuna_plots.plot_optimization_history}
    if len(complete) >= 2 and study.get_trials(deepcopy=False)[0].params:
        plots["param_importances.png"] = optuna_plots.plot_param_importances
    written = []
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = plot(study)
            axes.figure.tight_layout()
            axes.figure.savefig(sweep_dir / name, dpi=120)
            written.append(sweep_dir / name)
        except Exception as err:  # a plot is a convenience: the search's result stands without it
            log.warning("skipped %s: %s", name, str(err).splitlines()[0] if str(err) else err)
        finally:
            plt.close("all")
    return written


def shown(params: dict) -> str:
    """Parameters for a log line: floats to 4 significant digits."""
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else override_text(k, v) for k, v in params.items()
    )


def write_study_outputs(study, metric: str, sweep_dir: Path, fixed: list[str], compose, study_at):
    """trials.csv/.md, the plots and best.yaml; logs the study's tally and how to reuse its best
    trial. `compose` turns overrides into a job config; `study_at` is (study name, storage)."""
    rows = write_trials_table(study, sweep_dir)
    if not rows:
        return
    counts = Counter(r["state"] for r in rows)  # running: another process's, still going
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    summary = f"study {study_at[0]!r}: {len(rows)} trials ({states})"
    if counts["complete"] == 0:
        log.info("%s; no complete trial; %s", summary, sweep_dir / "trials.md")
        return
    write_plots(study, sweep_dir)
    best = study.best_trial
    overrides = best.user_attrs.get("overrides") or fixed + [
        override_text(k, v) for k, v in best.params.items()
    ]
    try:
        preset = write_best_preset(compose, overrides, best, metric, study_at, sweep_dir)
    except ConfigError as err:  # the configs changed since that trial ran
        preset = f"no best.yaml ({err})"
    log.info(
        "%s; best trial %d: %s %.4f | %s; %s; reuse it: %s",
        summary, best.number, metric, best.value, shown(best.params),
        sweep_dir / "trials.md", preset,
    )  # fmt: skip
