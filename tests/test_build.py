"""The build path (dlexp.build): seeded generators, a config group's arguments, the optimizer,
the parts in order on composed configs, and the run's data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dlexp.backends import numpy_backend
from dlexp.build import (
    augment_generator,
    build_parts,
    group_arguments,
    load_run_data,
    make_optimizer,
    model_arguments,
    seed_generators,
)
from dlexp.data import load_cifar10
from dlexp.errors import ConfigError
from dlexp.models.registry import ModelEntry, get_model_entry
from dlexp.numpy_nn import MLP as NumpyMLP  # noqa: N811
from dlexp.numpy_nn import SGD
from tests.conftest import compose_train

# --- the seeded generators --------------------------------------------------------------------


def draws(rng: np.random.Generator) -> list[int]:
    return rng.integers(0, 2**62, size=4).tolist()


def test_seed_generators_are_the_first_two_children_of_the_seed():
    model_seq, sampler_seq = np.random.SeedSequence(7).spawn(2)
    model_rng, sampler_rng = seed_generators(7)
    assert draws(model_rng) == draws(np.random.default_rng(model_seq))
    assert draws(sampler_rng) == draws(np.random.default_rng(sampler_seq))


def test_generators_are_reproducible_independent_and_the_augment_one_is_a_third_child():
    first, again = seed_generators(3), seed_generators(3)
    model, sampler = (draws(rng) for rng in first)
    assert [model, sampler] == [draws(rng) for rng in again]
    assert model != sampler and draws(seed_generators(4)[0]) != model
    third = np.random.default_rng(np.random.SeedSequence(3).spawn(3)[2])
    augment = draws(augment_generator(3))
    assert augment == draws(third) and augment not in (model, sampler)


def test_a_negative_seed_is_refused():
    with pytest.raises(ConfigError, match=r"^seed must be >= 0, got -1$"):
        seed_generators(-1)


# --- a group's arguments ----------------------------------------------------------------------


def test_group_arguments_drop_the_name_and_resolve_to_plain_python():
    cfg = OmegaConf.create({"base": 0.1, "optim": {"name": "x", "lr": "${base}", "betas": [1, 2]}})
    kwargs = group_arguments(cfg.optim)
    assert kwargs == {"lr": 0.1, "betas": [1, 2]} and type(kwargs["betas"]) is list
    assert "name" in cfg.optim  # the config itself is left alone


@pytest.mark.parametrize(
    ("model", "n_hidden", "expected"),
    [("numpy_mlp", 64, [64]), ("torch_mlp", 64, [64]), ("numpy_mlp", [8, 4], [8, 4]),
     ("users_model", 64, 64)],
)  # fmt: skip
def test_model_arguments_turn_an_int_n_hidden_into_a_list_for_the_builtin_mlps(
    model, n_hidden, expected
):
    cfg = OmegaConf.create({"model": {"name": model, "n_hidden": n_hidden, "neg_slope": 0.1}})
    entry = ModelEntry(model, "torch", lambda **kwargs: None)
    assert model_arguments(cfg, entry) == {"n_hidden": expected, "neg_slope": 0.1}


# --- the optimizer ----------------------------------------------------------------------------


class Params:
    def parameters(self):
        return ["w", "b"]


def recording_optimizer(params, lr: float, momentum: float = 0.0):
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    return {"params": list(params), "lr": lr, "momentum": momentum}


def recording_adam(params, lr: float, betas=(0.9, 0.999)):
    return {"params": list(params), "lr": lr, "betas": betas}


TABLE = {"rec": recording_optimizer, "other": recording_optimizer, "adam": recording_adam}


def test_make_optimizer_calls_the_tables_class_with_the_parameters_and_the_groups_keys():
    optim = OmegaConf.create({"name": "rec", "lr": 0.5, "momentum": 0.9})
    made = make_optimizer(TABLE, optim, Params(), "numpy")
    assert made == {"params": ["w", "b"], "lr": 0.5, "momentum": 0.9}


@pytest.mark.parametrize(
    ("optim", "message"),
    [
        ({"name": "rmsprop"}, "optimizer 'rmsprop' is not available on the numpy backend; "
                              "choose one of adam, other, rec"),
        ({"name": "adam", "lr": 1, "betas": [0.9]}, r"optim.betas must be two values, got \[0.9\]"),
        ({"name": "adam", "lr": 1, "betas": 0.9}, r"optim.betas must be two values, got 0.9"),
        ({"name": "rec", "lr": 1, "betas": [0.9]}, r"optim \(rec\) has no key 'betas'"),
        ({"name": "rec", "lr": 1, "lrr": 1}, r"optim \(rec\) has no key 'lrr'; did you mean lr\? "
                                             r"\(it takes lr, momentum\)"),
        ({"name": "rec", "lr": -1.0}, r"optim \(rec\): lr must be > 0, got -1.0"),
        ({"name": "rec", "lr": "fast"}, r"optim \(rec\): lr: expected a number, got 'fast'"),
    ],
)  # fmt: skip
def test_make_optimizer_refuses_in_one_line(optim, message):
    with pytest.raises(ConfigError, match=f"^{message}") as err:
        make_optimizer(TABLE, OmegaConf.create(optim), Params(), "numpy")
    assert "\n" not in str(err.value)


# --- the parts, in order, on composed configs -------------------------------------------------


def compose(*overrides: str):
    return compose_train([*overrides, "output_dir=/unused", "device=cpu"])


def test_numpy_parts_are_the_configured_model_optimizer_and_no_schedule():
    cfg = compose("model.n_hidden=[7,5]", "optim.lr=0.05", "optim.momentum=0.9")
    parts = build_parts(cfg, np.random.default_rng(0))
    assert parts.entry == get_model_entry("numpy_mlp") and parts.backend_module is numpy_backend
    assert parts.device == "cpu" and parts.scheduler is None
    assert isinstance(parts.model, NumpyMLP) and isinstance(parts.optimizer, SGD)
    shapes = [linear.params["weight"].shape for linear in parts.model.linears]
    assert shapes == [(7, 3072), (5, 7), (10, 5)]  # (out, in)
    assert (parts.optimizer.lr, parts.optimizer.momentum) == (0.05, 0.9)


def test_the_numpy_model_is_drawn_from_the_model_generator():
    cfg = compose("model.n_hidden=[4]")

    def weights(seed: int) -> np.ndarray:
        return build_parts(cfg, np.random.default_rng(seed)).model.linears[0].params["weight"]

    np.testing.assert_array_equal(weights(1), weights(1))
    assert not np.array_equal(weights(1), weights(2))


def test_torch_parts_carry_the_device_optimizer_and_schedule():
    cfg = compose("model=torch_mlp", "optim=adamw", "optim.lr=0.003", "sched=cosine",
                  "max_steps=40")  # fmt: skip
    parts = build_parts(cfg, np.random.default_rng(0))
    assert parts.entry.backend == "torch" and parts.device == torch.device("cpu")
    assert isinstance(parts.optimizer, torch.optim.AdamW)
    assert parts.optimizer.param_groups[0]["params"] == list(parts.model.parameters())
    assert parts.scheduler is not None
    torch.manual_seed(123)  # build_parts seeds torch from cfg.seed itself, whatever came before
    other = build_parts(cfg, np.random.default_rng(1)).model  # the NumPy generator is not used
    for a, b in zip(parts.model.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["norm=torch_bn"], "numpy_mlp has no norm layers; use norm=none"),  # check_config first
        (["data.augment=flip_crp"], "data.augment must be one of none, flip, flip_crop, "
                                    "got 'flip_crp'; did you mean flip_crop?"),
        (["model=torch_mlp", "label_smoothing=1.0"],
         r"label_smoothing must be in \[0, 1\), got 1.0"),
        (["model.n_hidden=[0]"], "model numpy_mlp: "),
        (["+model.rng=1"], "model numpy_mlp has no key 'rng'"),  # given at run time, not a key
        (["optim.lr=0"], r"optim \(sgd\): learning rate must be > 0"),
        (["sched=step", "sched.step_size=0"], r"sched \(step\): "),
    ],
)  # fmt: skip
def test_each_build_step_refuses_in_one_line_naming_its_group(overrides, message):
    """Each refusal comes from the step that owns the value, before any data is read."""
    with pytest.raises(ConfigError, match=f"^{message}") as err:
        build_parts(compose(*overrides), np.random.default_rng(0))
    assert "\n" not in str(err.value)


def test_a_factory_that_returns_no_model_is_refused():
    cfg = compose("model=custom", "model.name=os:getcwd")
    with pytest.raises(ConfigError, match=r"^model os:getcwd returned a str, not a model$"):
        build_parts(cfg, np.random.default_rng(0))


# --- the run's data ---------------------------------------------------------------------------


def test_load_run_data_reads_the_data_group(tiny_cifar, tmp_path, monkeypatch):
    monkeypatch.setenv("DLEXP_CACHE", str(tmp_path / "cache"))
    keys = [f"data.root={tiny_cifar}", "data.validation_size=30", "data.preprocess=standardize",
            "data.train_subset=12", "data.eval_subset=5", "data.download=false"]  # fmt: skip
    data = load_run_data(compose(*keys, "data.cache=false"))
    assert not (tmp_path / "cache").exists()  # data.cache=false writes no cache
    want = load_cifar10(tiny_cifar, download=False, validation_size=30, preprocess="standardize",
                        cache_dir=None, train_subset=12, eval_subset=5)  # fmt: skip
    assert (len(data.train), len(data.val), len(data.test)) == (12, 5, 5)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(data, name).images, getattr(want, name).images)
    assert data.preprocess == "standardize"
    load_run_data(compose(*keys, "data.cache=true"))
    assert list((tmp_path / "cache").glob("*.npz"))  # the default cache folder, $DLEXP_CACHE
