"""Config composition and the one-line errors for bad input, all before any work starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from dlexp.errors import ConfigError
from dlexp.train import train
from tests.conftest import compose_train

CONF = Path(__file__).parents[1] / "conf"
GROUPS = ("model", "optim", "norm", "sched", "data", "experiment", "debug", "protocol")


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_option_composes(group, option):
    extra = ["model.name=dlexp.models.torch_mlp:torch_mlp"] if option == "custom" else []
    cfg = compose_train([f"{group}={option}", *extra, "output_dir=/tmp/unused"])
    assert OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    if group in ("optim", "norm", "sched") or (group == "model" and option != "custom"):
        assert cfg[group].name == option


def test_the_norm_group_and_the_norm_names_agree():
    from dlexp.nn.norm import NORMS

    assert sorted(NORMS) == group_options("norm")


def test_defaults_are_the_seed_numpy_experiment():
    cfg = compose_train([])
    assert cfg.model.name == "numpy_mlp" and list(cfg.model.n_hidden) == [100]
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum) == ("sgd", 2e-3, 0.0)
    assert (cfg.batch_size, cfg.max_steps, cfg.eval_freq) == (200, 1500, 100)
    assert cfg.model.neg_slope == 0.02 and cfg.norm.name == "none"


@pytest.mark.parametrize(
    ("preset", "model", "norm"),
    [
        ("seed_numpy_mlp", "numpy_mlp", "none"),
        ("seed_torch_mlp", "torch_mlp", "none"),
        ("seed_convnet", "convnet", "torch_bn"),
        ("seed_custom_bn", "convnet", "custom_bn"),
    ],
)
def test_seed_presets_use_the_courses_protocol(preset, model, norm):
    """The course trained on all 50 000 images; without a split, only train metrics can select."""
    cfg = compose_train([f"experiment={preset}"])
    assert (cfg.model.name, cfg.norm.name, cfg.task_name) == (model, norm, preset)
    assert cfg.data.validation_size == 0 and cfg.optimized_metric == "train/accuracy"
    default = compose_train([f"model={model}", f"norm={norm}"])
    assert (cfg.max_steps, cfg.batch_size, cfg.optim) == (
        default.max_steps,
        default.batch_size,
        default.optim,
    )


def test_convnet_alone_gives_the_seed_convnet_settings():
    cfg = compose_train(["model=convnet"])
    assert (cfg.optim.name, cfg.optim.lr) == ("adam", 1e-4)
    assert (cfg.batch_size, cfg.max_steps, cfg.eval_freq) == (32, 5000, 500)
    assert cfg.norm.name == "torch_bn"


def test_partial_override_takes_the_new_optimizers_own_lr():
    cfg = compose_train(["model=convnet", "optim=sgd"])
    assert (cfg.optim.name, cfg.optim.lr) == ("sgd", 2e-3)  # not Adam's 1e-4
    assert cfg.max_steps == 5000 and cfg.norm.name == "torch_bn"


def test_course_flags_map_to_single_overrides():
    cfg = compose_train(
        [
            "max_steps=7",
            "batch_size=3",
            "eval_freq=2",
            "optim.lr=0.1",
            "model.n_hidden=[5,6]",
            "model.neg_slope=0.1",
            "data.root=/x",
        ]
    )
    assert (cfg.max_steps, cfg.batch_size, cfg.eval_freq, cfg.optim.lr) == (7, 3, 2, 0.1)
    assert list(cfg.model.n_hidden) == [5, 6] and cfg.model.neg_slope == 0.1
    assert cfg.data.root == "/x"


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
    (["model.n_hidden=[1.5]"], r"model numpy_mlp: n_hidden\[0\]: Value '1.5'"),
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


def test_a_batch_larger_than_the_training_split_is_refused(tiny_cfg):
    with pytest.raises(ConfigError, match=r"batch_size must be in \[1, 250\]"):
        train(tiny_cfg("batch_size=251"))


def test_empty_hidden_list_is_a_linear_classifier(tiny_cfg):
    assert 0 <= train(tiny_cfg("model.n_hidden=[]", "max_steps=3")) <= 1


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


def test_compose_api_leaves_no_global_state():
    with initialize_config_module("dlexp.conf", version_base="1.3"):
        pass
    assert not GlobalHydra.instance().is_initialized()
