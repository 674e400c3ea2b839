"""The course's train_*.py scripts: flags, their Hydra overrides, 5-step runs via dlexp-train."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dlexp.compat.uva2019.course_flags import (
    CONVNET,
    NUMPY_MLP,
    TORCH_MLP,
    build_parser,
    flag_overrides,
    hidden_units,
    merge,
)
from tests.conftest import compose_train

SCRIPTS = {"train_mlp_numpy": NUMPY_MLP, "train_mlp_pytorch": TORCH_MLP,
           "train_convnet_pytorch": CONVNET}  # fmt: skip
# Small enough for a few seconds on a shared CPU; the convnet evaluates the 50 test images.
TINY_ARGS = {
    "train_mlp_numpy": ["--batch_size", "10", "--dnn_hidden_units", "20,10"],
    "train_mlp_pytorch": ["--batch_size", "10", "device=cpu"],
    "train_convnet_pytorch": ["--batch_size", "4", "eval_batch_size=50", "device=cpu"],
}


def parse(script, *argv):
    return build_parser(script).parse_known_args(list(argv))


@pytest.mark.parametrize("script", [NUMPY_MLP, TORCH_MLP], ids=["numpy", "pytorch"])
def test_mlp_scripts_have_the_course_defaults(script):
    flags, extra = parse(script)
    assert vars(flags) == {"dnn_hidden_units": [100], "learning_rate": 2e-3, "max_steps": 1500,
                           "batch_size": 200, "eval_freq": 100, "neg_slope": 0.02,
                           "data_dir": "./cifar10/cifar-10-batches-py"}  # fmt: skip
    assert extra == []


def test_convnet_script_has_the_course_defaults():
    flags, _ = parse(CONVNET)
    expected = {"learning_rate": 1e-4, "max_steps": 5000, "batch_size": 32, "eval_freq": 500}
    assert vars(flags) == {**expected, "data_dir": "./cifar10/cifar-10-batches-py"}


@pytest.mark.parametrize("name", SCRIPTS)
def test_course_defaults_compose_to_the_presets_own(name):
    script = SCRIPTS[name]
    from_flags = compose_train(flag_overrides(script, parse(script)[0]))
    plain = compose_train([f"experiment={script.preset}", f"data.root={from_flags.data.root}"])
    assert from_flags == plain  # the course's defaults are the seed's, as conf/ sets them
    assert from_flags.data.validation_size == 0  # the course trained on all 50 000 images


def test_flags_become_hydra_overrides():
    flags, extra = parse(NUMPY_MLP, "--dnn_hidden_units", "100,100", "--learning_rate", "1e-5",
                         "--max_steps", "7", "--batch_size", "3", "--eval_freq", "2",
                         "--neg_slope", "0.1", "--data_dir", "/d i,r/o'k=1", "seed=3")  # fmt: skip
    cfg = compose_train(merge(flag_overrides(NUMPY_MLP, flags), extra))
    assert cfg.model.name == "numpy_mlp" and list(cfg.model.n_hidden) == [100, 100]
    assert (cfg.optim.lr, cfg.model.neg_slope) == (1e-5, 0.1)
    assert (cfg.max_steps, cfg.batch_size, cfg.eval_freq, cfg.seed) == (7, 3, 2, 3)
    assert cfg.data.root == "/d i,r/o'k=1"


@pytest.mark.parametrize("path", ["/d i,r/o'k=1", "C:\\data\\cifar\\", "x\\'y [1]"])
def test_data_dir_survives_hydra_quoting(path):
    cfg = compose_train(flag_overrides(NUMPY_MLP, parse(NUMPY_MLP, "--data_dir", path)[0]))
    assert cfg.data.root == path


def test_hidden_units_parse_as_the_course():
    assert hidden_units("100") == [100]
    assert hidden_units("300, 200,100") == [300, 200, 100]
    assert hidden_units("") == []  # the course's linear classifier
    no_hidden = flag_overrides(NUMPY_MLP, parse(NUMPY_MLP, "--dnn_hidden_units", "")[0])
    assert compose_train(no_hidden).model.n_hidden == []
    with pytest.raises(SystemExit):
        parse(NUMPY_MLP, "--dnn_hidden_units", "100,abc")


def test_extra_overrides_win_over_flags_and_hydra_flags_pass_through():
    merged = merge(["model=numpy_mlp", "optim.lr=0.002", "max_steps=1500"],
                   ["-m", "optim.lr=0.1,0.01", "+foo=1"])  # fmt: skip
    assert merged == ["model=numpy_mlp", "max_steps=1500", "-m", "optim.lr=0.1,0.01", "+foo=1"]


@pytest.fixture(scope="module")
def script_runs(tiny_cifar, tmp_path_factory):
    """All three scripts run for 5 steps at once, each in its own process."""
    tmp = tmp_path_factory.mktemp("course-scripts")
    # One thread per process: three processes share the cores.
    env = {**os.environ, "DLEXP_CACHE": str(tmp / "cache"), "OMP_NUM_THREADS": "1"}
    procs = {}
    for name in SCRIPTS:
        cmd = [sys.executable, "-m", f"dlexp.compat.uva2019.{name}", "--max_steps", "5",
               "--eval_freq", "5", "--data_dir", str(tiny_cifar / "cifar-10-batches-py"),
               *TINY_ARGS[name], f"hydra.run.dir={tmp / name}",
               "progress=false"]  # fmt: skip
        procs[name] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)  # fmt: skip
    outputs = {name: proc.communicate(timeout=300)[0] for name, proc in procs.items()}
    return {name: (procs[name].returncode, outputs[name], tmp / name) for name in SCRIPTS}


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_leaves_the_artefacts_of_dlexp_train(script_runs, name):
    returncode, output, run = script_runs[name]
    assert returncode == 0, output
    hydra_files = {p.name for p in (run / ".hydra").iterdir()}
    assert {"config.yaml", "hydra.yaml", "overrides.yaml"} <= hydra_files
    events = list(run.glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"final", "best", "steps", "timing"} <= set(metrics)
    assert metrics["steps"] == 5
    # The course's protocol: all the training images, no validation split, so no best step.
    assert {"train/loss", "train/accuracy", "test/accuracy"} <= set(metrics["final"])
    assert not any(tag.startswith("val/") for tag in metrics["final"])
    assert metrics["optimized_metric"] == "train/accuracy" and metrics["best"] == {}


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_records_the_translated_config(script_runs, name):
    _, _, run = script_runs[name]
    config = (run / ".hydra" / "config.yaml").read_text()
    assert f"task_name: {SCRIPTS[name].preset}\n" in config
    overrides = (run / ".hydra" / "overrides.yaml").read_text()
    assert f"- experiment={SCRIPTS[name].preset}\n" in overrides and "- max_steps=5\n" in overrides
