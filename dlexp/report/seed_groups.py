"""Seed groups: runs whose resolved configs differ only in `seed` (plumbing aside), and each final
and best metric of a group over its seeds: n, mean, sd and a 95% Student-t interval."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from dlexp.report.estimates import Estimate, estimate
from dlexp.report.plot import override_items, short_names
from dlexp.report.run_config import (
    SEED_KEY,
    compared_config,
    config_text,
    differing_config_keys,
    identity,
)
from dlexp.run.folder import job_number
from dlexp.run.record import SUCCESSFUL, read_job_record

SPLIT_ORDER = ("val", "test", "train")  # how a group's metrics are listed: selection, then test
HEADLINE = ("final val/accuracy", "final test/accuracy", "best val/accuracy")  # in short tables
TRAIN_HEADLINE = "final train/accuracy"  # the headline of runs without validation (seed_* presets)


@dataclass
class Member:
    """One run of a group: its folder, its compared config and its metrics.json."""

    folder: Path
    config: dict[str, object]  # dotted keys, plumbing left out (run_config.compared_config)
    record: dict

    @property
    def seed(self):
        return self.config.get(SEED_KEY)

    @property
    def finished(self) -> bool:
        """Completed or stopped early: a run whose last metrics a group's statistics take."""
        return self.record.get("status", "completed") in SUCCESSFUL


def read_member(folder: Path, record: dict | None = None) -> Member:
    record = read_job_record(folder) if record is None else record
    return Member(folder, compared_config(folder), record)


def metric_order(name: str):
    """`final val/accuracy` before `final test/accuracy` ... before `best val/accuracy`."""
    kind, metric = name.split(" ", 1)
    split = metric.split("/", 1)[0]
    rank = SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)
    return (kind != "final", rank, metric)


@dataclass
class SeedGroup:
    """Runs alike but for their seed; `label` says what sets the group apart from the others."""

    members: list[Member]
    label: str = ""
    statistics: dict[str, Estimate] = field(default_factory=dict)  # filled by group_runs

    @property
    def config(self) -> dict[str, object]:
        return {k: v for k, v in self.members[0].config.items() if k != SEED_KEY}

    @property
    def seeds(self) -> list:
        return [m.seed for m in self.members]

    @property
    def finished(self) -> list[Member]:
        return [m for m in self.members if m.finished]


def metric_values(members: list[Member]) -> dict[str, list[float]]:
    """`final <metric>` and `best <metric>` -> the finite values of the finished members."""
    values: dict[str, list[float]] = {}
    for member in (m for m in members if m.finished):
        for kind in ("final", "best"):
            for metric, value in (member.record.get(kind) or {}).items():
                number = isinstance(value, int | float) and not isinstance(value, bool)
                if metric != "best_step" and number and math.isfinite(value):
                    values.setdefault(f"{kind} {metric}", []).append(float(value))
    return dict(sorted(values.items(), key=lambda item: metric_order(item[0])))


def group_statistics(members: list[Member]) -> dict[str, Estimate]:
    return {name: estimate(values) for name, values in metric_values(members).items()}


def group_runs(members: list[Member]) -> list[SeedGroup]:
    """Groups in the order their first run comes; each labelled and with its statistics."""
    by_identity: dict[str, SeedGroup] = {}
    for member in members:
        by_identity.setdefault(identity(member.config), SeedGroup([])).members.append(member)
    groups = list(by_identity.values())
    for group, label in zip(groups, group_labels(groups), strict=True):
        group.label = label
        group.statistics = group_statistics(group.members)
    return groups


def group_labels(groups: list[SeedGroup]) -> list[str]:
    """What differs between the groups: their overrides when those tell them apart (`lr=0.001`),
    else their resolved configs; one group is `all runs`."""
    if len(groups) == 1:
        return ["all runs"]
    items = [override_items(g.members[0].folder) for g in groups]
    for item in items:
        item.pop(SEED_KEY, None)
    labels = labels_of(items)
    if len(set(labels)) < len(groups):
        labels = labels_of([{k: config_text(v) for k, v in g.config.items()} for g in groups])
    if len(set(labels)) < len(groups):  # runs whose configs could not be read
        labels = [member_name(g.members[0].folder) for g in groups]
    return labels


def labels_of(items: list[dict[str, str]]) -> list[str]:
    """`lr=0.001 n_hidden=[8]`: each group's values of the keys that differ between them (those
    it sets); `defaults` for a group that sets none of them."""
    keys = differing_config_keys(items)
    names = short_names(keys)
    labels = [" ".join(f"{names[k]}={item[k]}" for k in keys if k in item) for item in items]
    return [label or "defaults" for label in labels]


def member_name(folder: Path) -> str:
    number = job_number(folder)
    return folder.name if number is None else str(number)


def seed_text(seeds: list) -> str:
    """`1-5, 8`: the seeds in order, runs of consecutive integers shortened."""
    if not all(isinstance(s, int) for s in seeds):
        return " ".join(map(str, seeds))
    ordered, parts = sorted(set(seeds)), []
    start = previous = None
    for seed in [*ordered, None]:
        if seed is not None and previous is not None and seed == previous + 1:
            previous = seed
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = seed
    return ", ".join(parts)


def headline_metrics(groups: list[SeedGroup]) -> list[str]:
    """The accuracies a short table shows: val and test (train's when there is no val)."""
    names = {n for g in groups for n in g.statistics}
    shown = [n for n in HEADLINE if n in names]
    if not any("val/" in n for n in shown) and TRAIN_HEADLINE in names:
        shown.insert(0, TRAIN_HEADLINE)
    return shown
