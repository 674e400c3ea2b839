"""A run's folder (dlexp.run.folder): job folder names and numbers; a refused run's folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dlexp.run.folder import MAX_FOLDER_NAME, FolderAtStart, job_folder_name, job_number
from tests.runs import DLEXP_TRAIN


def test_job_folder_names_show_every_swept_value_in_short():
    hydra_dirname = (
        "batch_size=256,data.augment=flip,model.dropout=0.26939982404817925,"
        "model.n_hidden=[1024,512],optim.lr=0.0012345678,optim.weight_decay=1e-05,seed=1"
    )
    assert job_folder_name(7, hydra_dirname) == (
        "7_batch_size=256,augment=flip,dropout=0.2694,n_hidden=[1024,512],lr=0.001235,"
        "weight_decay=1e-05,seed=1"
    )
    # two keys ending alike keep their full names; a group choice and ints stay as they are
    assert job_folder_name(0, "model=torch_mlp,norm.eps=0.001,optim.eps=1e-08,seed=3") == (
        "0_model=torch_mlp,norm.eps=0.001,optim.eps=1e-08,seed=3"
    )


def test_job_folder_names_escape_slashes_and_stay_short():
    assert job_folder_name(3, "") == "3"
    assert job_folder_name(3, "experiment=a/b") == "3_experiment=a%2Fb"
    long = job_folder_name(12, "model.n_hidden=[" + ",".join(["1024"] * 60) + "]")
    assert len(long) == MAX_FOLDER_NAME and long.startswith("12_n_hidden=[1024")
    other = job_folder_name(12, "model.n_hidden=[" + ",".join(["1024"] * 61) + "]")
    assert other != long  # the hash tells long names apart
    assert job_number(Path(long)) == 12 and job_number(Path("summary")) is None


def _folders(outputs: Path) -> set[Path]:
    """Run folders: those under <task>/runs/, and any other that holds a .hydra/."""
    return {*outputs.glob("*/runs/*"), *(p.parent for p in outputs.rglob(".hydra"))}


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("eval_freq=0", "eval_freq must be >= 1, got 0"),
        ("batch_size=100000", "batch_size must be in [1, 250], got 100000"),
        ("data.preprocess=normalize", "data.preprocess"),
        ("resume=outputs/nonexistent", "resume: outputs/nonexistent is neither a run folder nor"),
    ],
)
def test_a_single_run_refused_before_step_1_leaves_no_folder(tiny_cifar, tmp_path, override, line):
    """Issue 23 item 8: refused runs showed up as failed in reports."""
    outputs = tmp_path / "outputs"
    (outputs / "numpy_mlp" / "runs" / "earlier" / ".hydra").mkdir(parents=True)  # stays
    before = _folders(outputs)
    args = [f"data.root={tiny_cifar}", "data.validation_size=50", "progress=false", override]
    proc = subprocess.run(
        [*DLEXP_TRAIN, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and line in proc.stderr, proc.stderr
    assert _folders(outputs) == before


def test_a_sweep_job_refused_still_records_its_failure(tiny_cifar, tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        f"data.root={tiny_cifar}", "data.validation_size=50", "progress=false", "eval_freq=0",
        f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}",
    ]  # fmt: skip
    proc = subprocess.run([*DLEXP_TRAIN, "-m", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    record = json.loads((sweep / "0" / "metrics.json").read_text())
    assert (record["status"], record["reason"]) == ("failed", "eval_freq must be >= 1, got 0")


def test_only_a_folder_this_process_made_is_taken_back(tmp_path):
    made = tmp_path / "made"
    (made / ".hydra").mkdir(parents=True)
    (made / ".hydra" / "config.yaml").write_text("a: 1")
    (made / "train.log").write_text("")
    at_start = FolderAtStart.look(made, ".hydra", "train.log")
    (made / "metrics.json").write_text("{}")
    at_start.undo()
    assert not made.exists()
    kept = tmp_path / "kept"  # a user's folder given as hydra.run.dir, with a file of theirs
    (kept / ".hydra").mkdir(parents=True)
    (kept / "notes.txt").write_text("mine")
    (kept / "train.log").write_text("earlier lines\n")
    at_start = FolderAtStart.look(kept, ".hydra", "train.log")
    with (kept / "train.log").open("a") as log:
        log.write("this process's line\n")
    at_start.undo()
    assert (kept / "notes.txt").read_text() == "mine"
    assert (kept / "train.log").read_text() == "earlier lines\n"
