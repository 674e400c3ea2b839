"""Call a constructor with a config group's keys, turning every refusal into one ConfigError line.

Config keys equal constructor arguments, so the constructor's own signature is the schema of
groups that the static schema cannot know (a model from a user's package): unknown names are
refused with the closest known one, annotated types are checked by OmegaConf, and the range
checks that the constructor itself makes come back as one line naming the group.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dlexp.errors import ConfigError, DlexpError, closest, one_line


def _accepted(factory: Callable) -> tuple[set[str], bool]:
    """The keyword names `factory` accepts, and whether it takes **kwargs."""
    params = inspect.signature(factory).parameters.values()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def checkable(annotation) -> bool:
    """Whether OmegaConf can validate values against this annotation."""
    probe = dataclasses.make_dataclass("Probe", [("value", annotation)])
    try:
        OmegaConf.structured(probe)
    except (OmegaConfBaseException, ValueError, TypeError):
        return False
    return True


def _check_types(factory: Callable, group: str, kwargs: dict) -> None:
    try:  # the signature's annotations: for a class, those of __init__
        params = inspect.signature(factory, eval_str=True).parameters
    except Exception:  # a user's annotation we cannot resolve: leave types to the constructor
        return
    hints = {n: p.annotation for n, p in params.items() if p.annotation is not p.empty}
    fields = [(n, hints[n]) for n in kwargs if n in hints and checkable(hints[n])]
    if not fields:
        return
    schema = OmegaConf.structured(dataclasses.make_dataclass("Arguments", fields))
    try:
        OmegaConf.merge(schema, {n: kwargs[n] for n, _ in fields})
    except OmegaConfBaseException as err:
        raise ConfigError(f"{group}: {one_line(err)}") from None


def checked_call(factory: Callable, group: str, kwargs: dict, **runtime: Any):
    """`factory(**kwargs, **runtime)`; `group` names the config group in errors ("model")."""
    accepted, takes_any = _accepted(factory)
    configurable = accepted - set(runtime)
    for name in sorted(kwargs):
        if (name not in accepted and not takes_any) or name in runtime:
            takes = ", ".join(sorted(configurable)) or "no arguments"
            raise ConfigError(
                f"{group} has no key {name!r}{closest(name, configurable)} (it takes {takes})"
            )
    _check_types(factory, group, kwargs)
    try:
        return factory(**kwargs, **runtime)
    except DlexpError:
        raise
    except (ValueError, TypeError) as err:  # the constructor's own range and type checks
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{group}: {message}") from err  # the chain is for HYDRA_FULL_ERROR
