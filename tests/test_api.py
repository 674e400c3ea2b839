"""The Python API: runs composed and trained in one process look like dlexp-train's, and a run's
model and predictions match its checkpoint and its own forward pass; docs/python_api.md runs."""

from __future__ import annotations

import contextlib
import doctest
import io
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

import dlexp
from dlexp.build import load_run_data
from dlexp.data import load_raw_cifar10
from dlexp.errors import ConfigError, DataError, DlexpError
from dlexp.numpy_nn import SoftMaxModule
from dlexp.run.checkpoint_file import load_run_state
from dlexp.run.checkpoints import BEST, LAST, checkpoint_folder
from dlexp.training import main, objective
from tests.conftest import write_batch
from tests.runs import DLEXP_TRAIN, build_run

DOC = Path(__file__).parent.parent / "docs" / "python_api.md"
TINY = ["data.validation_size=50", "batch_size=20", "eval_batch_size=64", "progress=false",
        "max_steps=12", "eval_freq=4", "log_freq=4"]  # fmt: skip
MODELS = ("numpy_mlp", "torch_mlp")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The working directory of this module's runs: compose() puts them under ./outputs."""
    folder = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield folder


def compose_tiny(tiny_cifar, *overrides):
    return dlexp.compose([f"data.root={tiny_cifar}", *TINY, *overrides])


@pytest.fixture(scope="module")
def runs(tiny_cifar, workdir):
    """Each model composed and trained twice, all in this process: model -> (run, run)."""
    return {
        model: tuple(dlexp.train(compose_tiny(tiny_cifar, f"model={model}")) for _ in range(2))
        for model in MODELS
    }


def test_compose_gives_a_fresh_run_folder_under_the_working_directory(tiny_cifar, workdir):
    first, second = (compose_tiny(tiny_cifar, "model=torch_mlp") for _ in range(2))
    pattern = r"outputs/torch_mlp/runs/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d{6}"
    assert re.fullmatch(pattern, first.output_dir) and re.fullmatch(pattern, second.output_dir)
    assert first.output_dir != second.output_dir
    assert not Path(first.output_dir).exists()  # nothing is written before train()
    assert Path.cwd() == workdir  # never chdir
    assert "hydra" not in first and first.model.name == "torch_mlp"


@pytest.mark.parametrize("model", MODELS)
def test_a_run_trains_twice_in_one_process_alike_and_reports_its_record(runs, model):
    first, second = runs[model]
    assert first.folder != second.folder
    for run in (first, second):
        record = json.loads((run.folder / "metrics.json").read_text())
        assert (run.status, run.steps, run.objective) == ("completed", 12, record["objective"])
        assert (run.final, run.best, run.timing) == (
            record["final"],
            record["best"],
            record["timing"],
        )
        assert run.config.model.name == model
    assert first.final == second.final  # the same seed: the same run


@pytest.mark.parametrize("model", MODELS)
def test_the_folder_holds_what_hydra_saves_and_load_run_reads_it(runs, tiny_cifar, model):
    run = runs[model][0]
    hydra = run.folder / ".hydra"
    overrides = [f"data.root={tiny_cifar}", *TINY, f"model={model}"]
    assert yaml.safe_load((hydra / "overrides.yaml").read_text()) == overrides
    recorded = yaml.safe_load((hydra / "hydra.yaml").read_text())["hydra"]["overrides"]
    assert recorded == {"task": overrides, "hydra": []}
    assert OmegaConf.load(hydra / "config.yaml") == run.config
    loaded = dlexp.load_run(run.folder)
    assert loaded == run  # folder, config, status, record
    assert dlexp.load_run(run.checkpoint("last")).folder == run.folder


def test_dlexp_report_eval_and_resume_work_on_a_folder_the_api_trained(runs, tiny_cifar):
    from dlexp.evaluate import main as evaluate
    from dlexp.report.cli import main as report

    run = runs["torch_mlp"][0]
    evaluate([str(run.folder), "split=val", "device=cpu"])
    record = json.loads((run.folder / "eval" / "last_val.json").read_text())
    assert record["metrics"]["val/accuracy"] == run.final["val/accuracy"]
    report([str(run.folder)])
    assert f"dlexp-train data.root={tiny_cifar}" in (run.folder / "report.md").read_text()
    # the command line extends the run: it recomposes the saved overrides to compare
    extended = dlexp.train(compose_tiny(tiny_cifar, "max_steps=4"))
    args = [*DLEXP_TRAIN, f"resume={extended.folder}", "max_steps=8"]
    subprocess.run(args, check=True, capture_output=True)
    assert dlexp.load_run(extended.folder).steps == 8
    # and so does compose(), with the same rules
    again = dlexp.train(dlexp.compose([f"resume={extended.folder}", "max_steps=12"]))
    assert (again.folder, again.steps, again.status) == (extended.folder, 12, "completed")
    with pytest.raises(ConfigError, match=r"resume: optim\.lr would be 0\.5 but the run"):
        dlexp.train(dlexp.compose([f"resume={extended.folder}", "max_steps=16", "optim.lr=0.5"]))
    assert dlexp.load_run(extended.folder).steps == 12  # a refused resume changes nothing


def raw_train_images(tiny_cifar):
    """The tiny training split (after the 50 validation images): uint8 rows in R, G, B planes."""
    return load_raw_cifar10(tiny_cifar / "cifar-10-batches-py").train_x[50:]


def numpy_forward(mlp, x: np.ndarray) -> np.ndarray:
    """Probabilities of the NumPy MLP, module by module, for x (N, 3072)."""
    for linear, activation in zip(mlp.linears, mlp.activations, strict=False):
        x = activation.forward(linear.forward(x))
    return SoftMaxModule().forward(mlp.linears[-1].forward(x))


def reference_probabilities(model, x: np.ndarray) -> np.ndarray:
    """The model's own forward and softmax on preprocessed images x (N, 3, 32, 32)."""
    if hasattr(model, "linears"):
        return numpy_forward(model, x.reshape(len(x), -1))
    import torch  # only for the torch run

    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(np.array(x))), dim=1).numpy()


@pytest.mark.parametrize("model", MODELS)
def test_predict_is_the_softmax_of_the_models_forward_on_its_preprocessed_images(
    runs, tiny_cifar, model
):
    run = dlexp.load_run(runs[model][0].folder)
    zeros = run.predict(np.zeros((2, 32, 32, 3), np.uint8))
    assert zeros.shape == (2, 10)
    np.testing.assert_allclose(zeros.sum(axis=1), 1, rtol=0, atol=1e-12)
    mean_image = raw_train_images(tiny_cifar).mean(axis=0)  # mean_image preprocessing
    x = (0 - mean_image).astype(np.float32).reshape(1, 3, 32, 32).repeat(2, axis=0)
    np.testing.assert_allclose(zeros, reference_probabilities(run.model(), x), atol=1e-6)
    # the run's own training images, as (N, H, W, C): the training split's arrays exactly
    images = raw_train_images(tiny_cifar)[:7].reshape(7, 3, 32, 32).transpose(0, 2, 3, 1)
    training = load_run_data(run.config).train.images[:7]
    expected = reference_probabilities(run.model(), np.asarray(training))
    np.testing.assert_allclose(run.predict(images), expected, atol=1e-6)


def test_predict_uses_the_runs_standardize_statistics(tiny_cifar, workdir):
    run = dlexp.train(compose_tiny(tiny_cifar, "data.preprocess=standardize", "max_steps=4"))
    planes = raw_train_images(tiny_cifar).reshape(-1, 3, 1024).astype(np.float64)
    mean, std = planes.mean(axis=(0, 2)), planes.std(axis=(0, 2))
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    x = (images.transpose(0, 3, 1, 2) - mean[:, None, None]) / std[:, None, None]
    expected = numpy_forward(run.model(), x.reshape(3, -1).astype(np.float32))
    np.testing.assert_allclose(run.predict(images), expected, atol=1e-6)


def state_arrays(model) -> dict[str, np.ndarray]:
    return {
        k: np.asarray(v.detach() if hasattr(v, "detach") else v)
        for k, v in model.state_dict().items()
    }


@pytest.mark.parametrize("model", MODELS)
def test_model_holds_the_weights_of_the_best_checkpoint(runs, model):
    run = runs[model][0]
    for which, name in (("best", BEST), ("last", LAST)):
        backend, sampler, _ = build_run(run.config)  # the run's parts, built as train() does
        load_run_state(checkpoint_folder(run.folder) / name, backend, sampler)
        got, want = state_arrays(run.model(which)), state_arrays(backend.model)
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{which} {key}")
    if run.best["best_step"] != run.steps:  # then best and last differ
        best, last = state_arrays(run.model()), state_arrays(run.model("last"))
        assert any(not np.array_equal(best[k], last[k]) for k in best)
    assert getattr(run.model(), "training", False) is False  # torch: eval mode


def test_model_leaves_the_callers_random_generators_as_they_were(runs):
    import torch

    run = runs["torch_mlp"][0]
    random.seed(7)
    torch.manual_seed(7)
    expected = (random.random(), torch.rand(3))
    random.seed(7)
    torch.manual_seed(7)
    run.model()
    assert random.random() == expected[0] and torch.equal(torch.rand(3), expected[1])


def test_objective_is_what_a_sweeper_gets_back(tiny_cifar, workdir):
    cfg = compose_tiny(tiny_cifar, "max_steps=4")
    value = objective(cfg)
    assert value == json.loads((Path(cfg.output_dir) / "metrics.json").read_text())["objective"]


def cli_error(overrides: list[str]) -> str:
    """The one line dlexp-train prints for `overrides`, without its `dlexp-train: error: `."""
    err = io.StringIO()
    argv = mock.patch.object(sys, "argv", ["dlexp-train", *overrides])
    with argv, contextlib.redirect_stderr(err), pytest.raises(SystemExit):
        main()
    return err.getvalue().removeprefix("dlexp-train: error: ").rstrip("\n")


@pytest.mark.parametrize(
    "overrides", [["model=foo"], ["max_steps=abc"], ["optim.lrr=1"], ["max_steps=["], ["lr=1,2"]]
)
def test_a_bad_override_is_the_commands_one_line_config_error(overrides, workdir):
    with pytest.raises(ConfigError) as refused:
        dlexp.compose(overrides)
    message = str(refused.value)
    assert "\n" not in message and refused.value.__cause__ is None
    assert message == cli_error(overrides)


def test_load_run_and_predict_refuse_bad_input_in_one_line(runs, tmp_path):
    for path, why in ((tmp_path, "is no dlexp run"), (tmp_path / "nowhere", "does not exist")):
        with pytest.raises(DlexpError, match=why) as refused:
            dlexp.load_run(path)
        assert "\n" not in str(refused.value)
    run = runs["numpy_mlp"][0]
    for images in (np.zeros((2, 32, 32, 3)), np.zeros((2, 3, 32, 32), np.uint8)):
        with pytest.raises(DataError, match=r"uint8 images \(N, 32, 32, 3\)"):
            run.predict(images)
    with pytest.raises(ConfigError, match="which must be one of best, last"):
        run.model("first")


def write_cifar10_of_default_size(root: Path) -> None:
    """Random CIFAR-format data with room for the default 5000 validation images."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [*((f"data_batch_{i}", 1100) for i in range(1, 6)), ("test_batch", 200)]:
        images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        write_batch(folder / name, images, np.arange(n) % 10)


def test_the_python_api_page_runs_as_written(tmp_path, monkeypatch):
    """docs/python_api.md's examples, as a doctest, with $DLEXP_DATA holding the data. The
    code fences become blank lines, which end an example's expected output."""
    write_cifar10_of_default_size(tmp_path / "data")
    monkeypatch.setenv("DLEXP_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    parser, report = doctest.DocTestParser(), []
    text = re.sub(r"^```.*$", "", DOC.read_text(), flags=re.MULTILINE)
    test = parser.get_doctest(text, {}, DOC.name, str(DOC), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
    assert runner.tries >= 8  # the page's examples were found
