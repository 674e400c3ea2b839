"""The suite's rows that run whole programs: dlexp-train and the bare scripts, start to exit."""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.suite_run import Child, dlexp_train, python_module, python_script, run_child

SEED_STEPS, SEED_EVAL = 1500, 100  # the seed's default run: steps, evaluate every this many
QUICK_STEPS, QUICK_EVAL = 20, 10


@dataclass
class Suite:
    """What every row needs: the mode, the data, the children's environment and a progress line."""

    quick: bool
    repeats: int
    root: str  # holds cifar-10-batches-py
    env: dict[str, str]
    say: Callable[[str], None] = print
    gpu: str | None = None  # the CUDA device's name; None: torch rows run on the CPU
    startups: list[float] = field(default_factory=list)  # --quick reuses numpy_run's start-ups

    def steps(self) -> tuple[int, int]:
        return (QUICK_STEPS, QUICK_EVAL) if self.quick else (SEED_STEPS, SEED_EVAL)

    def torch_device(self) -> str:
        """Where torch rows ran (device=auto), for their note."""
        return f"on {self.gpu}" if self.gpu else "on the CPU; not measured on a GPU"


@dataclass
class Row:
    """One line of the table; figures are already formatted, with their unit."""

    name: str  # stable id, e.g. numpy_run
    what: str
    dlexp: str = "—"
    reference: str = "—"
    ratio: str = "—"
    goal: str = "—"
    verdict: str = "—"
    peak_rss_mb: str = "—"  # dlexp / reference, the most over the repeats
    runs: str = "—"
    note: str = ""


def judge(suite: Suite, ratio: float, goal: float) -> str:
    """'meets' / 'misses' against an upper bound; --quick judges nothing."""
    if suite.quick:
        return "not judged (--quick)"
    return "meets" if ratio <= goal else "**misses**"


def rss(*children: list[Child]) -> str:
    """The peak RSS of each side, in MB, as 'a / b'."""
    return " / ".join(f"{max(c.peak_rss_mb for c in side):.0f}" for side in children)


def run_dlexp(suite: Suite, *overrides: str) -> tuple[Child, dict]:
    """One `dlexp-train` run in a throw-away run folder: (the child, its metrics.json)."""
    with tempfile.TemporaryDirectory(prefix="dlexp-bench-run-") as tmp:
        args = dlexp_train(*overrides, f"data.root={suite.root}", "data.download=false",
                           "progress=false", f"hydra.run.dir={tmp}/run")  # fmt: skip
        child = run_child(args, suite.env)
        metrics = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
    return child, metrics


def whole_run_pair(
    suite: Suite, name: str, experiment: str, script: str, *overrides: str
) -> tuple[list, list]:
    """dlexp-train and a bare script alternately, `repeats` times each: their Child lists."""
    sides = {
        "dlexp-train": lambda steps, every: run_dlexp(
            suite,
            f"experiment={experiment}",
            f"max_steps={steps}",
            f"eval_freq={every}",
            *overrides,
        ),
        script: lambda steps, every: (
            run_child(python_script(script, suite.root, str(steps), str(every)), suite.env),
            None,
        ),
    }
    if not suite.quick:  # one untimed step each: fills the array cache and the page cache
        for side, run in sides.items():
            suite.say(f"{name}: warm-up, {side}")
            run(1, 1)
    results: dict[str, list] = {side: [] for side in sides}
    for i in range(suite.repeats):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))  # no first-mover bias
        for side in order:
            suite.say(f"{name}: repeat {i + 1}/{suite.repeats}, {side}")
            results[side].append(sides[side](*suite.steps()))
    return results["dlexp-train"], results[script]


def pair_row(suite: Suite, name: str, what: str, pair: tuple[list, list], goal: float | None):
    """A row comparing whole-run walls: medians, their ratio and the per-pair ratios."""
    ours, ref = [c for c, _ in pair[0]], [c for c, _ in pair[1]]
    med_ours = statistics.median(c.wall_s for c in ours)
    med_ref = statistics.median(c.wall_s for c in ref)
    ratio = med_ours / med_ref
    paired = statistics.median(a.wall_s / b.wall_s for a, b in zip(ours, ref, strict=True))
    return Row(name, what, f"{med_ours:.2f} s", f"{med_ref:.2f} s", f"{ratio:.2f}×",
               f"≤ {goal}×" if goal else "—", judge(suite, ratio, goal) if goal else "—",
               rss(ours, ref), f"{len(ours)} pairs",
               f"per-pair ratio median {paired:.2f}×")  # fmt: skip


def numpy_run(suite: Suite) -> list[Row]:
    """The seed NumPy run through dlexp-train against naive_numpy_mlp.py."""
    # The same work as the naive script: it draws no confusion matrix or misclassified grid,
    # so the run's final figures (on by default) are off here.
    pair = whole_run_pair(suite, "numpy_run", "seed_numpy_mlp", "naive_numpy_mlp",
                          "logger.tensorboard.final_figures=false")  # fmt: skip
    suite.startups = [metrics["timing"]["startup_s"] for _, metrics in pair[0]]
    steps, _ = suite.steps()
    what = f"NumPy MLP run, {steps} steps, vs naive_numpy_mlp.py (process start to exit)"
    row = pair_row(suite, "numpy_run", what, pair, 0.8)
    row.note += "; final figures off (the naive script draws none)"
    return [row]


def torch_mlp_run(suite: Suite) -> list[Row]:
    """The seed torch MLP run through dlexp-train against bare_torch_mlp.py."""
    pair = whole_run_pair(suite, "torch_mlp_run", "seed_torch_mlp", "bare_torch_mlp")
    steps, _ = suite.steps()
    what = f"torch MLP run, {steps} steps, vs bare_torch_mlp.py (process start to exit)"
    row = pair_row(suite, "torch_mlp_run", what, pair, None)
    row.note += f"; {suite.torch_device()}"
    return [row]


def startup(suite: Suite) -> list[Row]:
    """dlexp-train's start-up (process start to first step), from metrics.json, warm cache."""
    children, startups = [], []
    if suite.quick and suite.startups:  # numpy_run's runs are the same command, longer
        startups = suite.startups
    else:
        if not suite.quick:
            suite.say("startup: warm-up (fills the array cache)")
            run_dlexp(suite, "experiment=seed_numpy_mlp", "max_steps=1")
        for i in range(suite.repeats):
            suite.say(f"startup: repeat {i + 1}/{suite.repeats}")
            child, metrics = run_dlexp(suite, "experiment=seed_numpy_mlp", "max_steps=1")
            children.append(child)
            startups.append(metrics["timing"]["startup_s"])
    med = statistics.median(startups)
    note = "timing.startup_s of metrics.json: imports, Hydra, data (warm array cache), model"
    if not children:
        note += "; --quick: numpy_run's runs"
    return [Row("startup", "dlexp-train start-up, NumPy seed run", f"{med:.2f} s",
                goal="≤ 1.0 s", verdict=judge(suite, med, 1.0),
                peak_rss_mb=rss(children) if children else "—",
                runs=str(len(startups)), note=note)]  # fmt: skip


def data_load(suite: Suite) -> list[Row]:
    """load_cifar10 in a fresh process, cold (empty array cache) and warm, interleaved."""
    samples: dict[str, list[tuple[Child, dict]]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="dlexp-bench-cache-") as tmp:
        load = python_module("benchmarks.rows_data_load", "--root", suite.root)

        def run(cache: str) -> tuple[Child, dict]:
            child = run_child(load, {**suite.env, "DLEXP_CACHE": cache})
            return child, child.last_json()

        suite.say("data_load: warm-up (fills the warm array cache)")
        run(f"{tmp}/warm")
        for i in range(suite.repeats):
            for kind in ("cold", "warm"):
                suite.say(f"data_load: repeat {i + 1}/{suite.repeats}, {kind}")
                samples[kind].append(run(f"{tmp}/{kind}-{i}" if kind == "cold" else f"{tmp}/warm"))
    rows = []
    for kind, goal in (("cold", None), ("warm", 2.0)):
        loads = [result["load_s"] for _, result in samples[kind]]
        med = statistics.median(loads)
        imp = statistics.median(result["import_s"] for _, result in samples[kind])
        rows.append(Row(f"data_load_{kind}", f"load_cifar10, {kind} array cache, fresh process",
                        f"{med:.2f} s", goal=f"≤ {goal} s" if goal else "—",
                        verdict=judge(suite, med, goal) if goal else "—",
                        peak_rss_mb=rss([c for c, _ in samples[kind]]), runs=str(len(loads)),
                        note=f"import dlexp.data {imp:.2f} s, not in the figure"))  # fmt: skip
    return rows
