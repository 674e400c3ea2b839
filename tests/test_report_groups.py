"""Seed groups and their statistics (dlexp.report.estimates, seed_groups, group_tables) against
textbook values and against NumPy and SciPy computed here, on hand-made run folders."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import yaml
from scipy import stats

from dlexp.report.cli import write_report
from dlexp.report.collect import read_folder
from dlexp.report.compare import Side, difference_sentence
from dlexp.report.estimates import estimate, welch_difference
from dlexp.report.group_tables import write_group_tables
from dlexp.report.seed_groups import group_runs, read_member, seed_text
from dlexp.search.summary import write_summary
from tests.hand_made_runs import completed, failed, rising_curves, write_run


def test_t_interval_of_five_values_is_the_textbook_one():
    """12, 14, 15, 13, 16: mean 14, s = √2.5, t(0.975, 4) = 2.776 (any t table)."""
    e = estimate([12.0, 14.0, 15.0, 13.0, 16.0])
    assert (e.n, e.mean) == (5, 14.0)
    assert e.sd == pytest.approx(math.sqrt(2.5), rel=1e-12)
    assert e.half == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5), rel=1e-7)
    low, high = stats.t.interval(0.95, 4, loc=14.0, scale=stats.sem([12, 14, 15, 13, 16]))
    assert (e.low, e.high) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))
    assert (round(e.low, 4), round(e.high, 4)) == (12.0368, 15.9632)


def test_one_value_has_no_spread_and_no_interval():
    e = estimate([0.45])
    assert (e.n, e.mean, e.sd, e.half, e.low, e.high) == (1, 0.45, None, None, None, None)


def test_estimates_are_computed_in_float64():
    values = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    e = estimate(values)
    assert e.mean == pytest.approx(np.mean(values.astype(np.float64)), rel=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_interval_equals_scipys(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.45, 0.01, 5), rng.normal(0.46, 0.03, 7)
    d = welch_difference(estimate(a), estimate(b))
    result = stats.ttest_ind(b, a, equal_var=False)
    low, high = result.confidence_interval(0.95)
    assert d.delta == pytest.approx(b.mean() - a.mean(), rel=1e-12)
    assert (d.delta - d.half, d.delta + d.half) == (
        pytest.approx(low, rel=1e-10),
        pytest.approx(high, rel=1e-10),
    )
    assert d.df == pytest.approx(result.df, rel=1e-10)


def test_welch_of_two_textbook_samples():
    """a = 1..5, b = 3..7 plus 1: Welch's df = 8, difference 2.2 ± t(0.975, 8)·1."""
    a, b = [1.0, 2, 3, 4, 5], [3.0, 4, 5, 6, 8]
    d = welch_difference(estimate(a), estimate(b))
    se = math.sqrt(np.var(a, ddof=1) / 5 + np.var(b, ddof=1) / 5)
    assert d.delta == pytest.approx(2.2)
    assert d.half == pytest.approx(stats.t.ppf(0.975, d.df) * se)
    assert d.spans_zero  # 2.2 ± 2.6: the samples cannot tell the means apart


def test_seed_text_shortens_consecutive_seeds():
    assert seed_text([3, 1, 2, 5, 7, 8, 9]) == "1-3, 5, 7-9"
    assert seed_text([4]) == "4"


@pytest.fixture
def sweep(tmp_path):
    """lr=0.001 with seeds 1-4 (one of them with another data.root: plumbing), lr=0.002 with
    seeds 1-3 (one failed), lr=0.003 once, and seed 1 again with max_steps=50 (not a group)."""
    folder = tmp_path / "sweep"
    rng = np.random.default_rng(0)
    values = {"a": rng.uniform(0.4, 0.5, (4, 2)), "b": rng.uniform(0.45, 0.55, (2, 2))}
    number = 0

    def job(seed, overrides, record):
        nonlocal number
        name = f"{number}_lr={overrides['optim.lr']},seed={seed}"  # as Hydra names a job
        curves = rising_curves(rng, record["final"]["val/accuracy"]) if record["final"] else None
        write_run(folder / name, seed, overrides, record, curves=curves)
        number += 1

    for seed, (val, test) in enumerate(values["a"], start=1):
        plumbing = {"data.root": "/elsewhere"} if seed == 2 else {}
        job(seed, {"optim.lr": "0.001", **plumbing}, completed(val, test))
    for seed, (val, test) in enumerate(values["b"], start=1):
        job(seed, {"optim.lr": "0.002"}, completed(val, test))
    job(3, {"optim.lr": "0.002"}, failed("training diverged", 40))
    job(1, {"optim.lr": "0.003"}, completed(0.3, 0.31))
    job(1, {"optim.lr": "0.001", "max_steps": "50"}, completed(0.2, 0.21))
    (folder / "multirun.yaml").write_text(yaml.safe_dump({"optimized_metric": "val/accuracy"}))
    return folder, values


def test_runs_differing_only_in_seed_and_plumbing_form_a_group(sweep):
    folder, values = sweep
    groups = group_runs([read_member(job.parent) for job in sorted(folder.glob("*/.hydra"))])
    by_label = {g.label: g for g in groups}
    assert set(by_label) == {"lr=0.001", "lr=0.002", "lr=0.003", "lr=0.001 max_steps=50"}
    assert sorted(by_label["lr=0.001"].seeds) == [1, 2, 3, 4]
    for label, key in (("lr=0.001", "a"), ("lr=0.002", "b")):
        for column, metric in enumerate(("final val/accuracy", "final test/accuracy")):
            sample = values[key][:, column]
            e = by_label[label].statistics[metric]
            low, high = stats.t.interval(0.95, len(sample) - 1, sample.mean(), stats.sem(sample))
            assert e.n == len(sample)  # the failed run of lr=0.002 does not count
            assert e.mean == pytest.approx(np.mean(sample), rel=1e-12)
            assert e.sd == pytest.approx(np.std(sample, ddof=1), rel=1e-12)
            assert (e.low, e.high) == (pytest.approx(low), pytest.approx(high))
    assert "best val/accuracy" in by_label["lr=0.001"].statistics
    assert by_label["lr=0.003"].statistics["final test/accuracy"].half is None


def test_a_sweep_summary_gets_groups_csv_and_a_seed_groups_section(sweep):
    folder, values = sweep
    rows = write_summary(folder)
    assert len(rows) == 9  # summary.csv: still one row per job
    with (folder / "groups.csv").open() as f:
        groups = list(csv.DictReader(f))
    row = next(r for r in groups if r["group"] == "lr=0.001" and r["metric"] == "test/accuracy")
    sample = values["a"][:, 1]
    assert (row["kind"], int(row["n"]), row["seeds"]) == ("final", 4, "1 2 3 4")
    assert float(row["mean"]) == pytest.approx(sample.mean(), rel=1e-12)  # full precision
    assert float(row["sd"]) == pytest.approx(np.std(sample, ddof=1), rel=1e-12)
    low, high = stats.t.interval(0.95, 3, sample.mean(), stats.sem(sample))
    assert (float(row["ci95_low"]), float(row["ci95_high"])) == (
        pytest.approx(low),
        pytest.approx(high),
    )
    lone = next(r for r in groups if r["group"] == "lr=0.003" and r["metric"] == "test/accuracy")
    assert (lone["n"], lone["sd"], lone["ci95_low"]) == ("1", "", "")

    summary = (folder / "summary.md").read_text()
    jobs, section = summary.split("## Seed groups")
    assert sum(line.startswith("| ") for line in jobs.splitlines()) == 10  # header, nine jobs
    assert (
        f"| lr=0.001 | 1-4 | 4 | final val/accuracy | 4 | {values['a'][:, 0].mean():.4f} |"
        in section
    )
    assert "| lr=0.002 | 1-3 | 3 (1 failed) | final val/accuracy | 2 |" in section
    assert "| n=1 |" in section


def test_summary_of_runs_that_differ_in_more_than_seed_says_so(tmp_path):
    for lr in ("0.1", "0.2"):
        write_run(tmp_path / f"{lr}", 1, {"optim.lr": lr}, completed(0.4, 0.4))
    write_summary(tmp_path)
    assert "every group is one job (n=1)" in (tmp_path / "summary.md").read_text()
    assert len(write_group_tables(tmp_path, sorted(tmp_path.glob("0.*")))) == 2


def test_report_of_a_sweep_shows_its_groups_best_first(sweep):
    folder, values = sweep
    report = read_folder(folder)
    best_means = [g.statistics["best val/accuracy"].mean for g in report.groups[:-1]]
    assert best_means == sorted(best_means, reverse=True)
    write_report(folder)
    markdown = (folder / "report.md").read_text()
    section = markdown.split("## Seed groups by val/accuracy")[1].split("\n## ")[0]
    assert f"{values['b'][:, 1].mean():.4f}" in section and "| lr=0.003 |" in section
    assert "95% confidence interval" in section
    assert "(report_files/groups_accuracy.png)" in section  # mean val curves, from metrics.csv
    assert "band of ± one standard deviation" in section
    assert (folder / "report_files" / "groups_loss.png").read_bytes()[:4] == b"\x89PNG"


def test_a_difference_in_words():
    a = estimate([0.45, 0.46, 0.44, 0.45, 0.46])
    b = estimate([0.47, 0.46, 0.48, 0.47, 0.46])
    sides = [Side("A", None, None), Side("B", None, None)]  # type: ignore[arg-type]
    d = welch_difference(a, b)
    text = difference_sentence(*sides, "final test/accuracy", a, b)
    assert text == f"B is {d.delta:.3f} ± {d.half:.3f} higher on test/accuracy (better); n = 5 each"
    loss = difference_sentence(*sides, "final val/loss", a, b)
    assert "higher on val/loss (worse)" in loss
    same = difference_sentence(*sides, "best val/accuracy", a, estimate([0.45, 0.47, 0.43]))
    assert same.startswith("B and A are not distinguishable on best val/accuracy: B − A = ")
    assert same.endswith("an interval that holds 0; n = 5 (A) and 3 (B)")
    single = difference_sentence(*sides, "final test/accuracy", a, estimate([0.5]))
    assert single.endswith("with no interval: B has one run")
