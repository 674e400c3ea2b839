"""The dlexp-train command: every user error is one line and exit 2; --help, --version; models
from a package outside dlexp."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dlexp
from dlexp.training import main

CLOSED_PORT_URL = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # port 9 (discard): refused


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """dlexp-train in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["dlexp-train", *argv]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = saved
    return code, out.getvalue(), err.getvalue()


# (overrides, a fragment of the one line). {empty} is a folder with no data in it.
CASES = [
    # the "Why": wrong types, unknown option, unknown key, key added with +
    (["max_steps=abc"], "max_steps=abc: expected an integer, got 'abc'"),
    (["optim.lr=abc"], "optim.lr=abc: expected a number, got 'abc'"),
    (["seed=abc"], "seed=abc: expected an integer, got 'abc'"),
    (["max_steps=1.5"], "max_steps=1.5: expected an integer, got '1.5'"),
    (["max_steps=null"], "max_steps=null: cannot be null"),
    (["model=torch_mlp", "model.dropout=x"], "model.dropout=x: expected a number, got 'x'"),
    (["model=torch_mlp", "model.n_hidden=5"], "model.n_hidden=5: expected a list, got a int"),
    (
        ["model=torch_mlp", "model.drop=0.1"],
        "unknown key 'model.drop'; did you mean model.dropout?",
    ),
    (
        ["logger.tensorboard.histogram_fre=1"],
        "unknown key 'logger.tensorboard.histogram_fre'; did "
        "you mean logger.tensorboard.histogram_freq?",
    ),
    (["model=foo"], "unknown model option 'foo'; choose one of convnet, custom, numpy_mlp"),
    (["optim=adamx"], "unknown optim option 'adamx'; did you mean adam?; choose one of adam"),
    (["optim.lrr=1"], "unknown key 'optim.lrr'; did you mean optim.lr?"),
    (["+optim.lrr=1"], "optim (sgd) has no key 'lrr'; did you mean lr? (it takes lr, momentum"),
    (["+optim.betas=0.9"], "optim (sgd) has no key 'betas' (it takes lr, momentum"),
    (["+optim.betas=[0.9]"], "optim (sgd) has no key 'betas' (it takes lr, momentum"),
    (["maxsteps=5"], "unknown key 'maxsteps'; did you mean max_steps?"),
    (["data.validation_size=abc"], "data.validation_size=abc: expected an integer, got 'abc'"),
    (["max_steps=["], "cannot parse the override max_steps=["),
    # ranges, from the constructors
    (["optim.lr=-1"], "optim (sgd): learning rate must be > 0, got -1.0"),
    (["model=torch_mlp", "optim.lr=-1"], "optim (sgd): Invalid learning rate: -1.0"),
    (["max_steps=0"], "max_steps must be >= 1, got 0"),
    (["checkpoint.every=-1"], "checkpoint.every must be >= 0 (or null), got -1"),
    (["seed=-1"], "seed must be >= 0, got -1"),
    (["optim=adam", "optim.betas=[0.9]"], "optim.betas must be two values, got [0.9]"),
    (["model=torch_mlp", "optim=adam", "optim.betas=[0.9]"], "optim.betas must be two values"),
    (["model=torch_mlp", "norm=torch_bn", "norm.eps=-1"], "norm.eps must be > 0, got -1.0"),
    (["model=convnet", "norm=custom_bn", "norm.momentum=5"], "norm.momentum must be in [0, 1]"),
    (["+model.rng=1"], "model numpy_mlp has no key 'rng'"),
    (["model.n_hidden=[1.5]"], "model.n_hidden=[1.5]: expected an integer, got '1.5'"),
    (["+model.depth=3"], "model numpy_mlp has no key 'depth' (it takes dtype, init_std"),
    (["sched=cosine", "sched.warmup_steps=1500"], "warmup_steps (1500) must be less than max"),
    (["model=torch_mlp", "device=tpu"], "device must be one of auto, cpu, cuda, mps, got 'tpu'"),
    (["model=torch_mlp", "device=cuda"], "device=cuda requested but CUDA is not available"),
    # rules that cross groups
    (["norm=torch_bn"], "numpy_mlp has no norm layers; use norm=none"),
    (["device=cuda"], "numpy_mlp is a NumPy model and runs on the CPU only"),
    (["optimized_metric=test/accuracy"], "is a test metric: test data is reported, never"),
    # models from elsewhere
    (["model=custom"], "model.name needs a value: add model.name=<value>"),
    (["model=custom", "model.name=no_such_pkg.models:f"], "cannot import no_such_pkg.models"),
    (["model.name=resnet"], "unknown model 'resnet'; known models: convnet, numpy_mlp"),
    (["model=custom", "model.name=:foo"], "model ':foo': write module:factory"),
    (["model=custom", "model.name=os:getcwd"], "model os:getcwd returned a str, not a model"),
    # data
    (["data.root={empty}", "data.download=false"], "CIFAR-10 not found: looked for data_batch_1"),
    (["data.root={empty}", f"data.url={CLOSED_PORT_URL}"], "and downloading http://127.0.0.1:9"),
    # refused inside the job, after Hydra made the run folder (issue 23 item 8: none is left)
    (["eval_freq=0"], "eval_freq must be >= 1, got 0"),
    (["resume={empty}/nonexistent"], "nonexistent is neither a run folder nor a checkpoint file"),
    # the command line's form (issue 23 items 11-17)
    (["optim.lr=1e-3,2e-3"], "optim.lr=1e-3,2e-3: to sweep these values, add -m (a list is"),
    (["seed=range(1,3)"], "seed=range(1,3): to sweep these values, add -m"),
    (
        ["+experiment=torch_mlp_tuned"],
        "+experiment=torch_mlp_tuned: experiment is a config group; "
        "use experiment=torch_mlp_tuned (no +)",
    ),
    (["+max_steps=20"], "max_steps exists; drop the +: write max_steps=20"),
    (
        ["model.width=64"],
        "unknown key 'model.width' "
        "(model numpy_mlp takes dtype, init_std, n_classes, n_hidden, n_inputs, neg_slope)",
    ),
    (
        ["--learning_rate", "0.01"],
        "--learning_rate is a flag of the course's scripts; dlexp-train takes optim.lr=0.01",
    ),
    (["--dnn_hidden_units=100,100"], "dlexp-train takes model.n_hidden=[100,100]"),
    (["--data_dir", "{empty}/a b"], "dlexp-train takes data.root='{empty}/a b'"),
    (["--foo"], "unknown flag --foo; settings are key=value overrides (see --help)"),
    (["data.root=~/no-cifar-here", "data.download=false"], "in {home}/no-cifar-here and"),
    (["data.root=~nosuchuser/x"], "data.root=~nosuchuser/x: quote a value with ~ (data.root='"),
    (["-m", "--cfg", "job"], "--cfg and -m cannot be used together; use one of them"),
]
# Words of Hydra, OmegaConf and NumPy that no line may show
FOREIGN_WORDS = ("Ambiguous value", "Multiple values for", "Could not append", "not in struct",
                 "LexerNoViableAlt", "RuntimeWarning", "usage:", "Key '")  # fmt: skip


@pytest.mark.parametrize(("overrides", "fragment"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_every_user_error_is_one_line_and_exit_2(tmp_path, monkeypatch, overrides, fragment):
    if "CUDA is not available" in fragment:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("DLEXP_DATA", str(empty))  # no data anywhere: a late check would fail here
    argv = [o.format(empty=empty) for o in overrides]
    code, out, err = run_main([*argv, "progress=false", f"hydra.run.dir={tmp_path / 'run'}"])
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("dlexp-train: error: "), err
    assert fragment.format(empty=empty, home=Path.home()) in err, err
    assert "Traceback" not in out + err and "../shared" not in err
    assert not any(word in out + err for word in FOREIGN_WORDS), err
    assert not (tmp_path / "run").exists()  # a single run refused before step 1 leaves no folder


@pytest.mark.parametrize(
    ("override", "frame"),
    [("optim.lrr=1", "config_loader_impl.py"), ("optim.lr=-1", "dlexp/numpy_nn/optim.py")],
)
def test_hydra_full_error_still_shows_the_traceback(tmp_path, override, frame):
    proc = subprocess.run(
        [sys.executable, "-m", "dlexp", override, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**_clean_env(), "HYDRA_FULL_ERROR": "1"},
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr and frame in proc.stderr


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        (["--cfg", "job", "--resolve"], "output_dir: outputs/numpy_mlp/runs/"),
        (["--cfg", "job", "--resolve", "hydra.run.dir=/tmp/x y"], "output_dir: /tmp/x y"),
        (["--cfg", "job"], "output_dir: ${hydra:runtime.output_dir}"),
        (["--cfg", "job", "--package", "optim"], "lr: 0.002"),
        (["--cfg", "hydra"], "override_dirname:"),
        (["--info", "defaults"], "optim/sgd"),
        (["--info", "defaults-tree"], "optim: sgd"),
        (["--info", "config"], "max_steps: 1500"),
    ],
)
def test_hydras_introspection_flags_work(flags, shown):
    code, out, err = run_main(flags)
    assert code == 0 and not err, err
    assert shown in out, out


def test_help_is_dlexps_own_and_version_is_the_packages():
    code, out, _ = run_main(["--help"])
    assert code == 0 and out.startswith("dlexp-train: train one experiment on CIFAR-10")
    for group in ("model: convnet, custom, numpy_mlp, torch_mlp", "optim: adam, adamw, sgd"):
        assert group in out
    assert "sched: cosine, none, onecycle, step" in out and "debug: fast, overfit" in out
    assert out.count("dlexp-train ") >= 4  # the usage line and three example commands
    code, out, _ = run_main(["--version"])
    assert (code, out.strip()) == (0, f"dlexp-train (dlexp) {dlexp.__version__}")


def _clean_env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}


def _write_user_package(site: Path) -> None:
    """A package outside dlexp with one torch model, registered by an entry point."""
    (site / "tiny_models").mkdir(parents=True)
    (site / "tiny_models" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            def tiny_mlp(width: int = 8, n_classes: int = 10):
                return nn.Sequential(
                    nn.Flatten(), nn.Linear(3072, width), nn.ReLU(), nn.Linear(width, n_classes)
                )
            """
        )
    )
    info = site / "tiny_models-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-models\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dlexp.models]\ntiny = tiny_models:tiny_mlp\n")


@pytest.mark.parametrize(
    "name", ["tiny", pytest.param("tiny_models:tiny_mlp", marks=pytest.mark.slow)]
)
def test_a_model_from_a_users_package_trains_by_name(tmp_path, tiny_cifar, name):
    site = tmp_path / "site"
    _write_user_package(site)
    run = tmp_path / "run"
    args = [
        "model=custom", f"model.name={name}", "+model.width=16", f"data.root={tiny_cifar}",
        "data.validation_size=50", "batch_size=20", "max_steps=4", "eval_freq=2",
        "progress=false", "device=cpu", f"hydra.run.dir={run}",
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "dlexp", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**_clean_env(), "PYTHONPATH": str(site)},
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 4 and 0 <= metrics["final"]["val/accuracy"] <= 1
    typo = subprocess.run(
        [sys.executable, "-m", "dlexp", *args, "+model.widht=3"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**_clean_env(), "PYTHONPATH": str(site)},
    )
    assert typo.returncode == 2
    assert typo.stderr.strip().endswith(
        f"model {name} has no key 'widht'; did you mean width? (it takes n_classes, width)"
    )


def test_multirun_flag_after_the_overrides_runs_the_sweep(tmp_path, tiny_cifar):
    """`dlexp-train model=numpy_mlp -m ...`: Hydra's own parser refuses a flag after overrides."""
    sweep = tmp_path / "sweep"
    code, _, err = run_main([
        "model=numpy_mlp", "-m", "max_steps=2,3", f"data.root={tiny_cifar}",
        "data.validation_size=50", "batch_size=20", "eval_freq=1", "progress=false",
        f"hydra.sweep.dir={sweep}",
    ])  # fmt: skip
    assert code == 0, err
    steps = sorted(json.loads(p.read_text())["steps"] for p in sweep.glob("*/metrics.json"))
    assert steps == [2, 3]


def test_flags_first_moves_only_the_multirun_flag():
    from dlexp.cli import flags_first

    assert flags_first(["a=1", "-m", "b=2,3"]) == ["-m", "a=1", "b=2,3"]
    assert flags_first(["--multirun", "a=1"]) == ["--multirun", "a=1"]
    assert flags_first(["a=1", "--cfg", "job"]) == ["a=1", "--cfg", "job"]
    # a flag's value is not a flag to move, and nothing after `--` moves
    assert flags_first(["--config-dir", "-m", "a=1"]) == ["--config-dir", "-m", "a=1"]
    assert flags_first(["a=1", "--", "-m"]) == ["a=1", "--", "-m"]
    assert flags_first(["-i", "config", "a=1", "-m"]) == ["-m", "-i", "config", "a=1"]
    assert flags_first(["-i", "a=1", "-m"]) == ["-m", "-i", "a=1"]


def test_cli_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dlexp", "optim.lr=-1", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "dlexp-train: error: optim (sgd): learning rate must be > 0, got -1.0"
    ]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_help_into_a_pipe_that_closes_early_prints_no_traceback():
    proc = subprocess.Popen([sys.executable, "-m", "dlexp", "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_clean_env())  # fmt: skip
    proc.stdout.close()  # before it prints (it starts in about a second), as `| head` can
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141) and "Traceback" not in err, err
