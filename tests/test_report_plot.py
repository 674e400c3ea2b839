"""dlexp-plot (dlexp.report.plot) on synthetic run folders and a real one: legends, markers,
where the PNGs go, idempotence."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from matplotlib.legend import Legend
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from dlexp.report.plot import (
    SPLIT_STYLES,
    curves_figure,
    main,
    read_curves,
    run_labels,
    shared_overrides,
)
from dlexp.training import train

SHARED = ["model=torch_mlp", "max_steps=40", "data.root=/somewhere", "progress=false"]


def write_run(folder: Path, overrides: list[str], curves: dict[str, list[tuple[int, float]]]):
    """A run folder as dlexp-train leaves one: .hydra/overrides.yaml and an event file."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    writer = EventFileWriter(str(folder))
    for tag, points in curves.items():
        for step, value in points:
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
            writer.add_event(Event(wall_time=1.0, step=step, summary=summary))
    writer.close()
    return folder


def full_curves(shift: float) -> dict[str, list[tuple[int, float]]]:
    """Train every 2 steps, val and test every 20: 20 and 2 points."""
    curves = {
        f"train/{m}": [(s, shift + s / 100) for s in range(2, 42, 2)] for m in ("accuracy", "loss")
    }
    for split in ("val", "test"):
        for metric in ("accuracy", "loss"):
            curves[f"{split}/{metric}"] = [(20, shift + 0.2), (40, shift + 0.4)]
    return curves


@pytest.fixture
def sweep(tmp_path) -> Path:
    """Four jobs of `optim.lr=1e-3,2e-3 model.n_hidden=[100],[200]`, named by number."""
    folder = tmp_path / "sweep"
    jobs = [(lr, hidden) for lr in ("0.001", "0.002") for hidden in ("[100]", "[200]")]
    for number, (lr, hidden) in enumerate(jobs):
        overrides = [SHARED[0], f"optim.lr={lr}", f"model.n_hidden={hidden}", *SHARED[1:]]
        write_run(folder / str(number), overrides, full_curves(shift=number / 10))
    return folder


def legends(fig) -> list[Legend]:
    return [a for a in fig.axes[0].get_children() if isinstance(a, Legend)]


def test_legends_name_only_what_differs(sweep):
    runs = sorted(p for p in sweep.iterdir())
    curves = {run: read_curves(run) for run in runs}
    fig = curves_figure(curves, run_labels(runs), "accuracy", tuple(SPLIT_STYLES), "accuracy")
    by_title = {
        leg.get_title().get_text(): [t.get_text() for t in leg.get_texts()] for leg in legends(fig)
    }
    assert by_title == {
        "run": [
            "lr=0.001 n_hidden=[100]",
            "lr=0.001 n_hidden=[200]",
            "lr=0.002 n_hidden=[100]",
            "lr=0.002 n_hidden=[200]",
        ],
        "split": ["train", "val", "test"],
    }
    assert len(fig.axes[0].get_lines()) == 12  # 4 runs x 3 splits, one legend entry per run


def test_the_title_holds_what_all_runs_share(sweep):
    runs = sorted(sweep.iterdir())
    assert shared_overrides(runs) == "model=torch_mlp max_steps=40"  # plumbing left out


def test_runs_that_differ_in_nothing_are_named_by_folder(tmp_path):
    runs = [write_run(tmp_path / name, SHARED, full_curves(0)) for name in ("a", "b")]
    assert run_labels(runs) == {runs[0]: "a", runs[1]: "b"}


def test_a_series_with_few_points_gets_markers(tmp_path):
    run = write_run(
        tmp_path / "run",
        SHARED,
        {"train/accuracy": [(s, s / 100) for s in range(1, 51)], "val/accuracy": [(50, 0.3)]},
    )
    fig = curves_figure(
        {run: read_curves(run)}, run_labels([run]), "accuracy", ("train", "val"), "t"
    )
    train, val = fig.axes[0].get_lines()
    assert len(val.get_xdata()) == 1 and val.get_marker() == "o"  # one evaluation still shows
    assert train.get_marker() in ("None", "", None)  # 50 points: a plain line
    assert [leg.get_title().get_text() for leg in legends(fig)] == [
        "split"
    ]  # one run: no run legend


def test_default_output_is_the_folder_given(sweep, tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    main([str(sweep)])
    assert sorted(p.name for p in (sweep / "plots").iterdir()) == ["accuracy.png", "loss.png"]
    assert list(elsewhere.iterdir()) == []
    assert f"{sweep / 'plots' / 'accuracy.png'} (12 curves)" in capsys.readouterr().out
    main([str(sweep / "0")])  # one run of it: its own plots/
    assert (sweep / "0" / "plots" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_out_changes_the_folder(sweep, tmp_path):
    main([str(sweep / "0"), str(sweep / "3"), "--out", str(tmp_path / "mine")])
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["accuracy.png", "loss.png"]
    assert not (sweep / "plots").exists() and not (sweep / "0" / "plots").exists()


def test_several_folders_without_out_are_refused(sweep, capsys):
    with pytest.raises(SystemExit) as stop:
        main([str(sweep / "0"), str(sweep / "1")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err


def test_running_again_writes_the_same_bytes(sweep):
    main([str(sweep)])
    first = {p.name: p.read_bytes() for p in (sweep / "plots").iterdir()}
    main([str(sweep)])  # its own plots/ is no run: the second pass sees the same four jobs
    second = {p.name: p.read_bytes() for p in (sweep / "plots").iterdir()}
    assert first == second and len(first) == 2


def test_plot_a_single_run(tiny_cfg, tmp_path, capsys):
    train(tiny_cfg("max_steps=6", "eval_freq=3"))
    main([str(tmp_path / "run"), "--out", str(tmp_path / "plots")])
    out = capsys.readouterr().out
    assert "accuracy.png (3 curves)" in out and "loss.png (3 curves)" in out
    assert (tmp_path / "plots" / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_refuses_a_folder_without_runs(tmp_path, capsys):
    try:
        main([str(tmp_path)])
    except SystemExit as stop:
        assert stop.code == 2
    assert "holds no TensorBoard event files" in capsys.readouterr().err


def test_curves_of_a_resumed_run_read_back_without_tensorboards_purge_warning(tmp_path, caplog):
    """A resume rewrites the steps after its checkpoint: the new points are kept, quietly."""
    from dlexp.report.plot import read_curves
    from dlexp.run.tensorboard import TensorBoardLogger

    first = TensorBoardLogger(tmp_path)
    for step in range(0, 11):
        first.scalars(step, {"train/loss": float(step)})
    first.close()
    time.sleep(1.1)  # event files are named by the second: the resumed one sorts after
    resumed = TensorBoardLogger(tmp_path, purge_step=6)
    for step in range(6, 13):
        resumed.scalars(step, {"train/loss": 100.0 + step})
    resumed.close()
    with caplog.at_level(logging.DEBUG):
        steps, values = read_curves(tmp_path)["train/loss"]
    assert steps == list(range(13))
    assert values == [float(s) for s in range(6)] + [100.0 + s for s in range(6, 13)]
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warned, caplog.text  # TensorBoard's "Detected out of order event.step ..."


def test_the_first_pyplot_import_does_not_announce_its_font_cache(tmp_path):
    code = (
        "import logging; logging.basicConfig(level=logging.INFO)\n"
        "from dlexp.report.plot import pyplot; pyplot()\n"
    )
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path)}  # no font cache yet: it is built
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.glob("fontlist-*.json")), "matplotlib built no font cache"
    assert "fontManager" not in proc.stderr + proc.stdout
