"""The rules that cross config groups (dlexp.config.checks.check_config) on composed configs:
each one broken alone is refused with its own line; configs that keep them all pass."""

from __future__ import annotations

import pytest

from dlexp.config.checks import check_config
from dlexp.errors import ConfigError
from dlexp.models.registry import get_model_entry
from tests.conftest import compose_train

OTHER_MODEL = "dlexp.models.torch_mlp:MLP"  # a module:factory model: no model.norm key

# (overrides, the whole message); each case breaks one rule of a config that passes without it
BROKEN = {
    "a test metric": (["optimized_metric=test/accuracy"],
                      "optimized_metric test/accuracy is a test metric: test data is reported, "
                      "never optimised; use val/accuracy"),
    "a metric fit cannot select on": (
        ["optimized_metric=val/acc"],
        "optimized_metric must be one of val/accuracy, val/loss, train/accuracy, train/loss, "
        "got val/acc"),
    "a val metric without validation": (
        ["data.validation_size=0", "optimized_metric=val/loss"],
        "optimized_metric val/loss needs a validation split: set data.validation_size > 0, "
        "or optimized_metric=train/accuracy"),
    "patience on a train metric": (
        ["optimized_metric=train/loss", "early_stop.patience=3"],
        "early_stop.patience counts evaluations of a val metric; optimized_metric is train/loss"),
    "numpy on cuda": (["device=cuda"], "numpy_mlp is a NumPy model and runs on the CPU only; "
                                       "use device=cpu (got device=cuda)"),
    "numpy with a norm": (["norm=custom_bn"],
                          "numpy_mlp has no norm layers; use norm=none (got norm=custom_bn)"),
    "numpy in bf16": (["precision=bf16"],
                      "numpy_mlp computes in float32 only; use precision=fp32 or auto"),
    "numpy compiled": (["compile=true"],
                       "numpy_mlp is a NumPy model: compile and channels_last are for torch "
                       "models"),
    "numpy channels_last": (["channels_last=true"],
                            "numpy_mlp is a NumPy model: compile and channels_last are for torch "
                            "models"),
    "numpy label smoothing": (["label_smoothing=0.1"],
                              "numpy_mlp trains with plain cross-entropy; label_smoothing is for "
                              "torch models"),
    "a norm for a model without one": (
        ["model=custom", f"model.name={OTHER_MODEL}", "norm=torch_bn"],
        f"model {OTHER_MODEL} takes no norm layer (its config has no model.norm); use norm=none "
        "(got norm=torch_bn)"),
    "a negative histogram_freq (the logger's own check, made here too)": (
        ["logger.tensorboard.histogram_freq=-1"],
        "logger.tensorboard.histogram_freq must be >= 0, got -1"),
}  # fmt: skip

KEPT = {  # configs on the edge of each rule, all allowed
    "the defaults": [],
    "checkpoints at the end only, or none": ["checkpoint.every=0"],
    "no checkpoint.every": ["checkpoint.every=null"],
    "smoothing just below 1": ["model=torch_mlp", "label_smoothing=0.99"],
    "the course protocol": ["data.validation_size=0", "optimized_metric=train/accuracy"],
    "patience on val/loss": ["optimized_metric=val/loss", "early_stop.patience=1"],
    "numpy on auto": ["device=auto", "precision=auto"],
    "torch with every option": ["model=convnet", "norm=custom_bn", "device=cuda", "precision=bf16",
                                "compile=true", "channels_last=true", "label_smoothing=0.1"],
    "a model without a norm, none": ["model=custom", f"model.name={OTHER_MODEL}"],
}  # fmt: skip


def checked(overrides: list[str]) -> None:
    cfg = compose_train([*overrides, "output_dir=/unused"])
    check_config(cfg, get_model_entry(cfg.model.name))


@pytest.mark.parametrize("case", BROKEN)
def test_each_rule_broken_alone_is_its_own_line(case):
    overrides, message = BROKEN[case]
    with pytest.raises(ConfigError) as err:
        checked(overrides)
    assert str(err.value) == message


@pytest.mark.parametrize("case", KEPT)
def test_configs_that_keep_every_rule_pass(case):
    checked(KEPT[case])


def test_an_unknown_logger_is_refused():
    cfg = compose_train(["output_dir=/unused"])
    cfg.logger = {"tensorboard": {"histogram_freq": 0, "final_figures": False}, "wandb": {}}
    with pytest.raises(ConfigError, match=r"^unknown logger 'wandb'; choose from tensorboard, "):
        check_config(cfg, get_model_entry("numpy_mlp"))
