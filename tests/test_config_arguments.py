"""checked_call (dlexp.config.arguments): a constructor's signature as its group's schema; every
refusal is one ConfigError line naming the group."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from dlexp.config.arguments import checked_call
from dlexp.errors import ConfigError, DataError


def tiny(width: int = 8, n_classes: int = 10, n_hidden: list[int] = (4,), lr: float = 0.1):
    """A factory that returns what it was given."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}\n(a second line of detail)")
    return {"width": width, "n_classes": n_classes, "n_hidden": n_hidden, "lr": lr}


def refused(factory, kwargs: dict, message: str, **runtime) -> ConfigError:
    """checked_call's ConfigError, which must read exactly `message`."""
    with pytest.raises(ConfigError) as err:
        checked_call(factory, "model tiny", kwargs, **runtime)
    assert str(err.value) == message
    return err.value


def test_the_keys_reach_the_factory_as_given():
    made = checked_call(tiny, "model tiny", {"width": 3, "n_hidden": [5, 6], "lr": 1})
    assert made == {"width": 3, "n_classes": 10, "n_hidden": [5, 6], "lr": 1}  # 1 stays an int


def test_an_unknown_key_names_the_closest_known_one_and_all_of_them():
    refused(tiny, {"widht": 3}, "model tiny has no key 'widht'; did you mean width? "
                                "(it takes lr, n_classes, n_hidden, width)")  # fmt: skip
    refused(tiny, {"zzz": 3, "width": 2}, "model tiny has no key 'zzz' "
                                          "(it takes lr, n_classes, n_hidden, width)")  # fmt: skip
    refused(lambda: None, {"depth": 3}, "model tiny has no key 'depth' (it takes no arguments)")


def test_unknown_keys_are_reported_in_sorted_order():
    refused(tiny, {"zeta": 1, "alpha": 2}, "model tiny has no key 'alpha' "
                                           "(it takes lr, n_classes, n_hidden, width)")  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": "abc"}, "width: expected an integer, got 'abc'"),
        ({"width": 2.5}, "width: expected an integer, got '2.5'"),
        ({"n_hidden": [1.5]}, "n_hidden[0]: expected an integer, got '1.5'"),
        ({"lr": "fast"}, "lr: expected a number, got 'fast'"),
    ],
)  # fmt: skip
def test_annotated_types_are_checked_before_the_factory_runs(kwargs, message):
    calls = []

    def factory(width: int = 8, n_hidden: list[int] = (4,), lr: float = 0.1):
        calls.append(1)

    refused(factory, kwargs, f"model tiny: {message}")
    assert calls == []


def test_a_class_is_checked_against_its_init():
    class Model:
        def __init__(self, width: int = 8):
            self.width = width

    assert checked_call(Model, "model tiny", {"width": 3}).width == 3
    refused(Model, {"width": "x"}, "model tiny: width: expected an integer, got 'x'")
    refused(Model, {"self": 1}, "model tiny has no key 'self' (it takes width)")


def test_annotations_omegaconf_cannot_check_are_left_to_the_factory():
    def factory(act: Callable = abs, rng: np.random.Generator | None = None, width: int = 8):
        return act, rng, width

    made = checked_call(factory, "model tiny", {"act": max, "rng": "seed", "width": 2})
    assert made == (max, "seed", 2)
    refused(factory, {"act": max, "width": "x"}, "model tiny: width: expected an integer, got 'x'")


def test_a_signature_whose_annotations_cannot_be_resolved_is_not_type_checked():
    def users_factory(width: NotImportedHere = 8):  # noqa: F821 (a user's module may do this)
        return width

    assert checked_call(users_factory, "model tiny", {"width": "x"}) == "x"


def test_a_constructors_value_or_type_error_is_one_line_naming_the_group():
    err = refused(tiny, {"width": 0}, "model tiny: width must be >= 1, got 0")
    assert isinstance(err.__cause__, ValueError)  # the chain, for HYDRA_FULL_ERROR

    def picky(x: int = 1):
        raise TypeError("x must be odd")

    refused(picky, {"x": 2}, "model tiny: x must be odd")

    def silent(x: int = 1):
        raise ValueError

    refused(silent, {}, "model tiny: ValueError")


def test_dlexps_own_errors_and_bugs_pass_through_unchanged():
    def missing(root: str = "."):
        raise DataError("CIFAR-10 not found")

    def buggy():
        raise KeyError("a bug")

    def norm_checked(norm: str = "none"):
        raise ConfigError(f"unknown norm {norm!r}; known norms: none")  # a ValueError, too

    with pytest.raises(DataError, match=r"^CIFAR-10 not found$"):
        checked_call(missing, "data", {"root": "/x"})
    refused(norm_checked, {"norm": "ln"}, "unknown norm 'ln'; known norms: none")  # not rewrapped
    with pytest.raises(KeyError):
        checked_call(buggy, "model tiny", {})


def test_a_factory_with_kwargs_takes_any_key_and_still_checks_its_named_ones():
    def open_factory(width: int = 8, **rest):
        return width, rest

    made = checked_call(open_factory, "model tiny", {"width": 3, "depth": 2, "act": "relu"})
    assert made == (3, {"depth": 2, "act": "relu"})
    refused(open_factory, {"width": "wide"}, "model tiny: width: expected an integer, got 'wide'")


def test_runtime_arguments_are_passed_but_refused_as_keys():
    def model(n_hidden: list[int] = (4,), rng: np.random.Generator | None = None):
        return n_hidden, rng

    generator = np.random.default_rng(0)
    assert checked_call(model, "model tiny", {"n_hidden": [3]}, rng=generator) == ([3], generator)
    refused(model, {"rng": 1}, "model tiny has no key 'rng' (it takes n_hidden)", rng=generator)

    def open_model(rng=None, **rest):
        return rng, rest

    refused(open_model, {"rng": 1}, "model tiny has no key 'rng' (it takes no arguments)",
            rng=generator)  # fmt: skip
