"""What a search leaves in its sweep folder: trials.csv, trials.md and the Optuna plots.

Rows come from the study's storage, so they cover every trial, those of other processes and
earlier runs included. Each trial carries its job's folder, status and steps in user attributes.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from dlexp.search.summary import write_table

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


def trial_rows(study, sweep_dir: Path) -> list[dict]:
    """One row per trial: number, state, value, steps run, params, job folder, reason."""
    keys = sorted({k for t in study.get_trials(deepcopy=False) for k in t.params})
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
                "reason": attrs.get("reason", ""),
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
