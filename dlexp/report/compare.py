"""What dlexp-compare compares. Each argument is a run, or a sweep or folder of runs whose seed
groups are compared; every group is set against the first one: the config keys that differ, the
metrics side by side, and each difference of means with Welch's 95% interval, in words."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from dlexp.errors import DlexpError
from dlexp.report.estimates import Difference, Estimate, welch_difference
from dlexp.report.run_config import SEED_KEY, config_text, differing_config_keys
from dlexp.report.run_listing import find_runs, is_refusal_leftover
from dlexp.report.seed_groups import SeedGroup, group_runs, metric_order, read_member, seed_text

TAGS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class Side:
    """One compared group: `A`, or `B1`, `B2` for the groups of one argument."""

    tag: str
    source: Path  # the argument it came from
    group: SeedGroup

    @property
    def title(self) -> str:
        """`B: outputs/.../sweep` (with the group's label when the argument has several)."""
        label = "" if self.group.label == "all runs" else f" [{self.group.label}]"
        return f"{self.tag}: {self.source}{label}"


def read_sides(paths: list[Path]) -> list[Side]:
    """The seed groups of each argument, in argument order."""
    if len(paths) > len(TAGS):
        raise DlexpError(f"at most {len(TAGS)} runs or folders are compared, got {len(paths)}")
    sides = []
    for letter, path in zip(TAGS, paths, strict=False):
        members = [read_member(folder) for folder in find_runs(path)]
        members = [m for m in members if not is_refusal_leftover(m.folder, m.record)]
        if not members:
            raise DlexpError(f"{path} holds no run (no .hydra/, metrics.json or environment.json)")
        groups = group_runs(members)
        for number, group in enumerate(groups, start=1):
            sides.append(Side(letter if len(groups) == 1 else f"{letter}{number}", path, group))
    if len(sides) < 2:
        raise DlexpError(
            f"{paths[0]} holds one group of runs: give another run or folder to compare"
        )
    return sides


def side_config(side: Side) -> dict[str, object]:
    """The group's config, with its seeds as one value (`1-5`)."""
    return {**side.group.config, SEED_KEY: seed_text(side.group.seeds)}


def differing_config(sides: list[Side]) -> list[list[str]]:
    """[key, value of A, value of B, ...] for each config key that differs, and only those."""
    configs = [side_config(s) for s in sides]
    return [
        [key, *(config_text(c[key]) if key in c else "(absent)" for c in configs)]
        for key in differing_config_keys(configs)
    ]


def compared_metrics(sides: list[Side]) -> list[str]:
    """Every `final ...` and `best ...` metric some side has, in report order."""
    names = {name for side in sides for name in side.group.statistics}
    return sorted(names, key=metric_order)


def decimals(half: float | None) -> int:
    """Enough decimals for two significant digits of the interval, and at least three."""
    if not half:
        return 4
    return min(8, max(3, 1 - math.floor(math.log10(half))))


def metric_words(name: str) -> str:
    """`final test/accuracy` -> `test/accuracy`; a best metric keeps its `best`."""
    return name.removeprefix("final ")


def counts_text(base: Side, other: Side, a: Estimate, b: Estimate) -> str:
    if a.n == b.n:
        return f"n = {a.n} each"
    return f"n = {a.n} ({base.tag}) and {b.n} ({other.tag})"


def difference_sentence(base: Side, other: Side, name: str, a: Estimate, b: Estimate) -> str:
    """`B is 0.012 ± 0.006 higher on test/accuracy (better); n = 5 each`, or why not."""
    d: Difference = welch_difference(a, b)
    first, second, metric = base.tag, other.tag, metric_words(name)
    places = decimals(d.half)
    counts = counts_text(base, other, a, b)
    delta = f"{second} − {first} = {d.delta:+.{places}f}"
    if d.half is None:
        single = [tag for tag, e in ((first, a), (second, b)) if e.n == 1]
        has = f"{single[0]} has one run" if len(single) == 1 else "each has one run"
        return f"{delta} on {metric}, with no interval: {has}"
    size = f"{abs(d.delta):.{places}f} ± {d.half:.{places}f}"
    if d.spans_zero:
        return (
            f"{second} and {first} are not distinguishable on {metric}: {delta} ± "
            f"{d.half:.{places}f}, an interval that holds 0; {counts}"
        )
    higher = d.delta > 0
    verdict = "better" if higher != metric.endswith("loss") else "worse"
    way = "higher" if higher else "lower"
    return f"{second} is {size} {way} on {metric} ({verdict}); {counts}"


def differences(sides: list[Side], names: list[str]) -> list[tuple[Side, str, str]]:
    """(side, metric, sentence) for every side after the first, on each metric both have."""
    base, found = sides[0], []
    for other in sides[1:]:
        for name in names:
            a, b = base.group.statistics.get(name), other.group.statistics.get(name)
            if a is not None and b is not None:
                found.append((other, name, difference_sentence(base, other, name, a, b)))
    return found
