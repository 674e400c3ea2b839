"""train() refuses bad input with one ConfigError line, before it touches any data where the
input alone is wrong (a batch larger than the training split needs the data to say so)."""

from __future__ import annotations

import subprocess

import pytest
import torch

from dlexp.errors import ConfigError
from dlexp.training import train
from tests.runs import tiny_command


def test_unknown_precision_is_one_line(tiny_cfg):
    with pytest.raises(ConfigError) as error:
        train(tiny_cfg("model=torch_mlp", "precision=fp8"))
    assert str(error.value) == "precision must be one of fp32, bf16, auto, got 'fp8'"


BAD_INPUTS = [
    (["model.name=resnet"], "unknown model 'resnet'; known models: convnet, numpy_mlp, torch_mlp"),
    (
        ["optim.name=rmsprop"],
        "optimizer 'rmsprop' is not available .* one of adam, adamw, sgd",
    ),
    (["model=torch_mlp", "norm.name=layer_norm"], "unknown norm 'layer_norm'; known norms"),
    (["optim.lr=0"], r"optim \(sgd\): learning rate must be > 0"),
    (["optim.lr=-1"], r"optim \(sgd\): learning rate must be > 0"),
    (["model=torch_mlp", "optim.lr=-1"], r"optim \(sgd\): Invalid learning rate: -1"),
    (["optim.nesterov=true"], "Nesterov momentum requires a momentum"),
    (["max_steps=0"], "max_steps must be >= 1"),
    (["eval_freq=0"], "eval_freq must be >= 1"),
    (["batch_size=0"], "batch_size must be >= 1"),
    (["model.n_hidden=[100,0]"], "hidden sizes must be positive"),
    (["model.n_hidden=[0]"], r"hidden sizes must be >= 1|positive"),
    (["device=cuda"], "numpy_mlp is a NumPy model and runs on the CPU only"),
    (["model=torch_mlp", "device=tpu"], "device must be one of auto, cpu, cuda, mps"),
    (["model=torch_mlp", "precision=fp16"], "precision must be one of fp32, bf16"),
    (["norm=custom_bn"], "numpy_mlp has no norm layers; use norm=none"),
    (["precision=bf16"], "numpy_mlp computes in float32 only"),
    (["compile=true"], "compile and channels_last are for torch models"),
    (["channels_last=true"], "compile and channels_last are for torch models"),
    (["logger.tensorboard.histogram_freq=-1"], "histogram_freq must be >= 0"),
    (["model.neg_slope=-0.1"], "neg_slope >= 0, got -0.1"),
    (["optimized_metric=test/accuracy"], "test metric"),
    (["data.validation_size=0"], "needs a validation split"),
    (["data.validation_size=-1"], "data.validation_size must be >= 0"),
    (["data.preprocess=whiten"], "data.preprocess must be one of"),
    (["data.eval_subset=0"], "data.eval_subset must be an integer >= 1"),
    (["+model.depth=3"], "model numpy_mlp has no key 'depth'"),
    (["+optim.lrr=1"], "optim .sgd. has no key 'lrr'; did you mean lr"),
    (["sched=cosine", "sched.warmup_steps=2000"], r"warmup_steps \(2000\) must be less than"),
    (["sched=step", "sched.step_size=0"], "step_size"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS)
def test_bad_input_is_refused_before_any_work(tiny_cfg, tmp_path, overrides, message):
    cfg = tiny_cfg(*overrides)
    cfg.data.root = str(tmp_path / "no-data-here")  # proves no data was touched first
    cfg.data.download = False
    with pytest.raises(ConfigError, match=message):
        train(cfg)


@pytest.mark.parametrize("model", ["numpy_mlp", "torch_mlp"])
def test_a_batch_larger_than_the_training_split_is_refused(tiny_cfg, model):
    with pytest.raises(ConfigError, match=r"batch_size must be in \[1, 250\]"):
        train(tiny_cfg(f"model={model}", "batch_size=251"))


def test_patience_is_checked(tiny_cfg):
    with pytest.raises(ConfigError, match=r"early_stop\.patience must be >= 1"):
        train(tiny_cfg("early_stop.patience=0"))
    with pytest.raises(ConfigError, match="counts evaluations of a val metric"):
        train(tiny_cfg("data.validation_size=0", "optimized_metric=train/accuracy",
                       "early_stop.patience=3"))  # fmt: skip


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error(tiny_cfg):
    with pytest.raises(ConfigError, match="device=cuda requested but CUDA is not available"):
        train(tiny_cfg("model=torch_mlp", "device=cuda"))


def test_a_diverging_numpy_run_prints_its_one_line_and_no_numpy_warning(tiny_cifar, tmp_path):
    proc = subprocess.run(
        tiny_command(tiny_cifar, tmp_path / "run", "optim.lr=10", "max_steps=200"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlexp-train: error: training diverged: ")
    assert "RuntimeWarning" not in proc.stdout + proc.stderr and "overflow" not in proc.stderr
