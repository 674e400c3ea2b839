"""The torch backend through the one entrypoint: every combination, devices, determinism."""

from __future__ import annotations

import json

import pytest
import torch

from dlexp.errors import ConfigError
from dlexp.training import train
from tests.runs import read_scalars

NORMS = ("none", "torch_bn", "autograd_bn", "custom_bn")
OPTIMS = ("sgd", "adam", "adamw")
VALID = [("numpy_mlp", "none", o) for o in OPTIMS] + [
    (m, n, o) for m in ("torch_mlp", "convnet") for n in NORMS for o in OPTIMS
]
INVALID = [("numpy_mlp", n, o) for n in NORMS[1:] for o in OPTIMS]


def small(model: str) -> list[str]:
    """Keep the ConvNet cheap on the tiny data."""
    return ["batch_size=8", "eval_batch_size=50"] if model == "convnet" else []


@pytest.mark.parametrize(("model", "norm", "optim"), VALID)
def test_every_valid_combination_runs_five_steps(tiny_cfg, tmp_path, model, norm, optim):
    cfg = tiny_cfg(
        f"model={model}",
        f"norm={norm}",
        f"optim={optim}",
        "max_steps=5",
        "eval_freq=5",
        "device=cpu",
        *small(model),
    )
    returned = train(cfg).objective
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    final = record["final"]
    assert returned == record["objective"] == record["best"]["val/accuracy"]
    assert all(v == v for v in final.values())  # no NaN


@pytest.mark.parametrize(("model", "norm", "optim"), INVALID)
def test_every_invalid_combination_is_refused(tiny_cfg, model, norm, optim):
    with pytest.raises(ConfigError, match="has no norm layers; use norm=none"):
        train(tiny_cfg(f"model={model}", f"norm={norm}", f"optim={optim}"))


@pytest.mark.parametrize("model", ["torch_mlp", pytest.param("convnet", marks=pytest.mark.slow)])
def test_same_seed_same_numbers_on_cpu(tiny_cfg, tmp_path, model):
    finals = []
    for attempt in range(2):
        cfg = tiny_cfg(
            f"model={model}",
            "max_steps=6",
            "eval_freq=3",
            "seed=7",
            "device=cpu",
            f"output_dir={tmp_path / str(attempt)}",
            *small(model),
        )
        train(cfg)
        finals.append(json.loads((tmp_path / str(attempt) / "metrics.json").read_text())["final"])
    assert finals[0] == finals[1]


def test_different_seeds_differ(tiny_cfg, tmp_path):
    finals = []
    for seed in (1, 2):
        out = tmp_path / str(seed)
        train(tiny_cfg("model=torch_mlp", "max_steps=6", f"seed={seed}", f"output_dir={out}"))
        finals.append(json.loads((out / "metrics.json").read_text())["final"])
    assert finals[0] != finals[1]


def test_torch_run_events_match_metrics(tiny_cfg, tmp_path):
    cfg = tiny_cfg(
        "model=torch_mlp",
        "optim=adam",
        "optim.lr=3e-4",
        "max_steps=12",
        "eval_freq=4",
        "log_freq=3",
        "device=cpu",
    )
    train(cfg)
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    scalars = read_scalars(run)
    assert [e.value for e in scalars["train/lr"]] == pytest.approx([3e-4] * 4)
    assert [e.step for e in scalars["test/accuracy"]] == [4, 8, 12]
    for tag, value in metrics["final"].items():
        assert scalars[tag][-1].value == pytest.approx(value, rel=1e-6)
    best_step = metrics["best"]["best_step"]
    val_at_best = {e.step: e.value for e in scalars["val/accuracy"]}[best_step]
    assert val_at_best == pytest.approx(max(e.value for e in scalars["val/accuracy"]))


def test_deterministic_flag_trains(tiny_cfg):
    try:
        run = train(tiny_cfg("model=torch_mlp", "max_steps=3", "deterministic=true"))
        assert 0 <= run.objective <= 1
    finally:
        torch.use_deterministic_algorithms(False)


def test_bf16_autocast_on_cpu_trains(tiny_cfg):
    assert 0 <= train(tiny_cfg("model=torch_mlp", "max_steps=3", "precision=bf16")).objective <= 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_convnet_trains_on_cuda(tiny_cfg, precision):
    cfg = tiny_cfg("model=convnet", "device=cuda", f"precision={precision}", "max_steps=5")
    assert 0 <= train(cfg).objective <= 1


def test_auto_precision_trains_in_fp32_on_cpu(tiny_cfg, tmp_path):
    finals = []
    for precision in ("fp32", "auto"):
        out = tmp_path / precision
        train(tiny_cfg("model=torch_mlp", "device=cpu", "max_steps=4", "eval_freq=4",
                       f"precision={precision}", f"output_dir={out}"))  # fmt: skip
        finals.append(json.loads((out / "metrics.json").read_text())["final"])
    assert finals[0] == finals[1]  # auto on the CPU is exactly fp32


def test_convnet_fast_debug_runs_on_tiny_data(tiny_cfg, tmp_path):
    """debug=fast of the preset, eager here (CPU compile of the ConvNet takes minutes; the
    compiled step is tested on the MLP in test_backends_torch.py)."""
    cfg = tiny_cfg("experiment=convnet_fast", "debug=fast", "batch_size=16", "eval_batch_size=50",
                   "compile=false", "device=cpu")  # fmt: skip
    assert 0 <= train(cfg).objective <= 1
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "completed"
