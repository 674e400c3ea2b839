"""The logger group, HParams and job folder names, read back from what a real tiny sweep wrote."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlexp.errors import ConfigError
from dlexp.run.folder import job_number
from dlexp.run.loggers import CSVLogger, MLflowLogger, check_logger_config
from tests.runs import DLEXP_TRAIN, hparams_records, session_start


def run_cli(tiny_cifar, *args: str, multirun: bool = False) -> subprocess.CompletedProcess:
    command = [
        *DLEXP_TRAIN, *(["-m"] if multirun else []), "max_steps=20",
        "eval_freq=10", "log_freq=5", "batch_size=20", "data.validation_size=50",
        f"data.root={tiny_cifar}", "progress=false", "model=torch_mlp", *args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def sweep(tiny_cifar, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("loggers") / "sweep"
    done = run_cli(
        tiny_cifar, "optim.lr=0.01,0.02", "model.n_hidden=[4],[8]", "seed=1,1",
        "logger=[tensorboard,csv]", "logger.tensorboard.final_figures=false",
        f"hydra.sweep.dir={folder}", multirun=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


def job_folders(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if (p / ".hydra").is_dir()), key=job_number)


def test_job_folders_say_what_each_job_changed_without_plumbing(sweep):
    names = [p.name for p in job_folders(sweep)]
    assert len(names) == 8
    assert names[0] == "0_batch_size=20,validation_size=50,eval_freq=10,log_freq=5,"\
        "max_steps=20,n_hidden=[4],model=torch_mlp,lr=0.01,seed=1"  # fmt: skip
    for name in names:
        assert "data.root" not in name and "progress" not in name and "logger" not in name


def test_hparams_list_swept_keys_first_without_plumbing(sweep):
    start = session_start(job_folders(sweep)[0])
    shown = list(start.hparams)
    for key in ("trial", "optim.lr", "model.n_hidden", "seed", "model.name", "optim.name"):
        assert key in shown
    assert start.hparams["trial"].string_value == "lr=0.01,n_hidden=[4],seed=1"
    for plumbing in ("data.root", "data.md5", "data.url", "progress", "data.cache", "model"):
        assert plumbing not in shown


def test_no_job_writes_an_experiment_summary_for_tensorboard_to_pick(sweep):
    """TensorBoard builds the HParams table from every run's session when no run has a summary
    of its own; with one per run, it took whichever run it found first as the table's columns."""
    for job in job_folders(sweep):
        assert list(hparams_records(job)) == ["_hparams_/session_start_info"], job.name


def test_every_job_logs_the_same_keys_and_identical_configs_stay_separate_trials(sweep):
    starts = [session_start(job) for job in job_folders(sweep)]
    assert len({tuple(sorted(start.hparams)) for start in starts}) == 1
    groups = [start.group_name for start in starts]
    assert len(set(groups)) == len(groups)  # jobs 0 and 1 differ only by nothing (seed=1,1)
    assert starts[0].hparams["optim.lr"].number_value == pytest.approx(0.01)
    assert starts[0].hparams["model.n_hidden"].string_value == "[4]"


def test_the_csv_logger_holds_every_scalar_tensorboard_holds(sweep):
    job = job_folders(sweep)[0]
    acc = EventAccumulator(str(job), size_guidance={"scalars": 0})
    acc.Reload()
    with (job / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    for tag in ("train/loss", "val/accuracy", "test/accuracy"):
        from_csv = [(int(r["step"]), float(r["value"])) for r in rows if r["tag"] == tag]
        events = acc.Scalars(tag)
        assert [step for step, _ in from_csv] == [e.step for e in events]
        assert [v for _, v in from_csv] == pytest.approx([e.value for e in events], rel=1e-6)


def test_a_resumed_csv_drops_the_points_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.csv"
    first = CSVLogger(path.name, out=path.parent)
    for step in (10, 20, 30):
        first.scalars(step, {"train/loss": step / 10})
    first.close("interrupted")
    resumed = CSVLogger(
        path.name, out=path.parent, purge_step=21
    )  # resumed from the checkpoint at step 20
    resumed.scalars(30, {"train/loss": 9.0})
    resumed.close("completed")
    with path.open(newline="") as f:
        rows = [(r["step"], r["value"]) for r in csv.DictReader(f)]
    assert rows == [("10", "1.0"), ("20", "2.0"), ("30", "9.0")]


def test_an_unknown_logger_is_one_line(tiny_cfg):
    cfg = tiny_cfg()
    cfg.logger = {"tensorboard": {"histogram_freq": 0, "final_figures": False}, "wandb": {}}
    with pytest.raises(ConfigError, match="unknown logger 'wandb'; choose from tensorboard, csv"):
        check_logger_config(cfg)


def flattened(node: dict, prefix: str = "") -> dict[str, str]:
    """{dotted key: str(value)} of a nested dict, lists kept whole (the reference for params)."""
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            flat.update(flattened(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


@pytest.mark.slow  # ~20 s: MLflow's start-up, twice, and dlexp-report
def test_mlflow_gets_the_whole_config_curves_and_files_beside_its_store(tiny_cifar, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from omegaconf import OmegaConf

    store, run_dir = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "run"
    done = run_cli(
        tiny_cifar, "logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={store}",
        "logger.mlflow.log_checkpoint=true", "logger.tensorboard.final_figures=false",
        "optim.lr=0.01", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("torch_mlp")
    artifacts_root = tmp_path / "mlflow-artifacts"  # beside the store, not ./mlruns
    assert experiment.artifact_location == artifacts_root.as_uri()
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    saved.output_dir = str(run_dir)
    want = flattened(OmegaConf.to_container(saved, resolve=True))
    assert len(want) > 40 and {k: run.data.params.get(k) for k in want} == want
    assert run.data.params["optim.lr"] == "0.01" and run.data.params["model.name"] == "torch_mlp"
    history = client.get_metric_history(run.info.run_id, "val/accuracy")
    assert [m.step for m in history] == [10, 20]

    artifacts = artifacts_root / run.info.run_id / "artifacts"
    for name in ("metrics.json", "checkpoints/best.safetensors"):  # the run uploaded them itself
        assert (artifacts / name).read_bytes() == (run_dir / name).read_bytes(), name
    subprocess.run(["dlexp-report", str(run_dir)], check=True, capture_output=True, timeout=300)
    logged = [p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*") if p.is_file()]
    assert {"metrics.json", "report.md", "report.html", "checkpoints/best.safetensors"} <= set(
        logged
    ) and any(name.startswith("report_files/") for name in logged)
    for name in logged:  # read back through MLflow: the run folder's bytes, under the root
        copy = client.download_artifacts(run.info.run_id, name, str(tmp_path / "back"))
        assert Path(copy).read_bytes() == (run_dir / name).read_bytes(), name


def test_the_mlflow_artifact_root_sits_beside_a_local_store(tmp_path):
    root = MLflowLogger
    want = (tmp_path / "mlflow-artifacts").as_uri()
    assert root.artifact_root(f"sqlite:///{tmp_path / 'mlflow.db'}") == want
    assert root.artifact_root(f"file://{tmp_path / 'mlruns'}") == want
    assert root.artifact_root("http://tracking.example:5000") is None  # the server's own
    assert root.artifact_root("databricks") is None
    assert MLflowLogger.upload_run_files(tmp_path) == []  # no mlflow.json: nothing


@pytest.mark.parametrize("model", ["numpy_mlp", "torch_mlp"])
def test_histogram_freq_writes_weight_and_gradient_histograms(tiny_cifar, tmp_path, model):
    run = tmp_path / "run"
    done = run_cli(
        tiny_cifar, f"model={model}", "logger.tensorboard.histogram_freq=10",
        f"hydra.run.dir={run}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    acc = EventAccumulator(str(run), size_guidance={"histograms": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()["histograms"]
    weights = [t for t in tags if t.startswith("weights/")]
    assert weights and len([t for t in tags if t.startswith("gradients/")]) == len(weights)
    assert [e.step for e in acc.Histograms(weights[0])] == [10, 20]
    assert "test_figures/confusion_matrix" in acc.Tags()["images"]  # the figures are on by default
