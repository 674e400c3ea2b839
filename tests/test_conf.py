"""conf/ through Hydra's compose API: every option composes, the seed's defaults, the presets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tests.conftest import compose_train

CONF = Path(__file__).parents[1] / "conf"
GROUPS = ("model", "optim", "norm", "sched", "data", "experiment", "debug", "protocol")


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_option_composes(group, option):
    extra = ["model.name=dlexp.models.torch_mlp:MLP"] if option == "custom" else []
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


def test_compose_api_leaves_no_global_state():
    with initialize_config_module("dlexp.conf", version_base="1.3"):
        pass
    assert not GlobalHydra.instance().is_initialized()


TORCH_PRESETS = ("seed_convnet", "seed_custom_bn", "seed_torch_mlp", "torch_mlp_best",
                 "torch_mlp_tuned", "convnet_fast")  # fmt: skip


@pytest.mark.parametrize("preset", TORCH_PRESETS)
def test_torch_presets_use_auto_precision(preset):
    assert compose_train([f"experiment={preset}"]).precision == "auto"


def test_convnet_fast_preset_has_the_issues_settings():
    cfg = compose_train(["experiment=convnet_fast"])
    assert cfg.model.name == "convnet" and cfg.norm.name == "torch_bn"
    assert (cfg.optim.name, cfg.optim.nesterov) == ("sgd", True) and cfg.optim.momentum > 0
    assert cfg.sched.name == "onecycle" and cfg.label_smoothing == 0.1
    assert cfg.batch_size == 512 and cfg.data.augment == "flip_crop"
    assert cfg.compile and cfg.channels_last and cfg.precision == "auto"
    assert cfg.data.validation_size > 0 and cfg.optimized_metric == "val/accuracy"


def test_debug_fast_is_a_short_run_on_an_eval_subset():
    cfg = compose_train(["model=convnet", "debug=fast", "output_dir=/unused"])
    assert (cfg.max_steps, cfg.eval_freq, cfg.data.eval_subset) == (10, 10, 200)
    assert cfg.task_name == "debug_convnet" and cfg.optim.name == "adam"
