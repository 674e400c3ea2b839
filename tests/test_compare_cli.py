"""dlexp-compare: on hand-made seed groups against Welch's interval from SciPy, and on two tiny
real sweeps through the commands (slow)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from dlexp.report.compare_cli import main
from tests.hand_made_runs import completed, rising_curves, write_run
from tests.runs import DLEXP_TRAIN, tiny_sweep

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEST_ACCURACY = {"a": [0.40, 0.42, 0.41, 0.43, 0.42], "b": [0.45, 0.47, 0.44, 0.46, 0.47]}


@pytest.fixture
def two_sweeps(tmp_path) -> tuple[Path, Path]:
    """Five seeds at lr=0.001 and five at lr=0.002, with curves in metrics.csv."""
    rng = np.random.default_rng(0)
    folders = []
    for name, lr in (("a", "0.001"), ("b", "0.002")):
        for seed, test in enumerate(TEST_ACCURACY[name], start=1):
            job = tmp_path / name / f"{seed - 1}_optim.lr={lr},seed={seed}"
            write_run(job, seed, {"optim.lr": lr}, completed(test + 0.01, test),
                      curves=rising_curves(rng, test))  # fmt: skip
        folders.append(tmp_path / name)
    return folders[0], folders[1]


def welch(a, b) -> tuple[float, float]:
    """mean(b) − mean(a) and the half-width of Welch's 95% interval, by SciPy."""
    low, high = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    return (low + high) / 2, (high - low) / 2


def test_two_seed_groups_get_welchs_difference_in_words(two_sweeps, tmp_path, capsys):
    out = tmp_path / "cmp"
    main([*map(str, two_sweeps), "--out", str(out)])
    printed = capsys.readouterr().out
    delta, half = welch(TEST_ACCURACY["a"], TEST_ACCURACY["b"])
    sentence = f"B is {delta:.3f} ± {half:.3f} higher on test/accuracy (better); n = 5 each"
    assert sentence in printed.splitlines()
    keys = re.search(r"Config keys that differ\n.*?\n─+\n(.*?)\n\n", printed, re.S).group(1)
    assert [line.split() for line in keys.splitlines()] == [["optim.lr", "0.001", "0.002"]]
    assert printed.splitlines()[-2:] == [str(out / "compare.md"), str(out / "compare.html")]

    markdown = (out / "compare.md").read_text()
    assert f"| final test/accuracy | {sentence} |" in markdown
    assert f"| final test/accuracy | {np.mean(TEST_ACCURACY['a']):.4f} ± " in markdown
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (out / link).read_bytes()[:8] == PNG_SIGNATURE
    page = (out / "compare.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 2  # accuracy and loss, each group's mean with its band
    for src in sources:
        assert base64.b64decode(src.removeprefix("data:image/png;base64,"))[:8] == PNG_SIGNATURE
    assert "<script" not in page and "http" not in page


def test_two_single_runs_have_no_interval(tmp_path, capsys):
    one = write_run(tmp_path / "one", 1, {}, completed(0.40, 0.41))
    two = write_run(tmp_path / "two", 2, {}, completed(0.42, 0.40))
    main([str(one), str(two), "--out", str(tmp_path / "cmp")])
    printed = capsys.readouterr().out
    assert "B − A = -0.0100 on test/accuracy, with no interval: each has one run" in printed
    assert re.search(r"^ seed +1 +2$", printed, re.M)  # the seed is what differs


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["nowhere", "."], "nowhere is not a folder"),
        (["a"], "a holds one group of runs: give another run or folder to compare"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(two_sweeps, args, line):
    command = [sys.executable, "-m", "dlexp.report.compare_cli", *args]
    cwd = two_sweeps[0].parent
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=60)
    assert proc.stderr.splitlines() == [f"dlexp-compare: error: {line}"]
    assert proc.returncode == 2 and not (cwd / "outputs").exists()


@pytest.fixture(scope="module")
def real_sweeps(tiny_cifar, tmp_path_factory) -> list[Path]:
    """`-m optim.lr=<lr> seed=1,2` on the tiny data through dlexp-train, at two rates."""
    root = tmp_path_factory.mktemp("compare") / "outputs"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    sweeps = []
    for lr in ("1e-3", "5e-3"):
        sweep = root / f"lr_{lr}"
        command = [*DLEXP_TRAIN, "-m", f"optim.lr={lr}", "seed=1,2", *tiny_sweep(tiny_cifar, sweep)]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        sweeps.append(sweep)
    return sweeps


@pytest.mark.slow  # two sweeps through dlexp-train: about 15 s here
def test_compare_of_two_real_sweeps(real_sweeps, tmp_path):
    compare = Path(sys.executable).with_name("dlexp-compare")
    out = tmp_path / "cmp"
    command = [str(compare), *map(str, real_sweeps), "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    keys = re.search(r"Config keys that differ\n.*?\n─+\n(.*?)\n\n", proc.stdout, re.S).group(1)
    assert [line.split() for line in keys.splitlines()] == [["optim.lr", "0.001", "0.005"]]
    assert re.search(r"^B (is|and A are) .* on test/accuracy.*; n = 2 each$", proc.stdout, re.M)
    page = (out / "compare.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # curves read from the event files
    assert "| optim.lr | 0.001 | 0.005 |" in (out / "compare.md").read_text()


@pytest.mark.slow  # (the sweeps above)
def test_a_real_sweep_has_its_seed_group_and_dlexp_runs_lists_it(real_sweeps):
    groups = (real_sweeps[0] / "groups.csv").read_text()
    assert "all runs,2,1 2," in groups and ",final,test/accuracy,2," in groups
    assert "## Seed groups" in (real_sweeps[0] / "summary.md").read_text()
    runs = Path(sys.executable).with_name("dlexp-runs")
    proc = subprocess.run([str(runs), str(real_sweeps[0].parent), "--json"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    listed = json.loads(proc.stdout)
    assert [r["status"] for r in listed] == ["completed"] * 4
    assert {r["overrides"]["optim.lr"] for r in listed} == {"0.001", "0.005"}
