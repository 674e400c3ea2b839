"""Errors that a user can fix, and the one line each becomes: the entry points print it and exit 2,
and a failed job records it in its metrics.json.

Hydra and OmegaConf are imported inside the functions that need their error types: the libraries
import this module and must not load them (tests/test_layering.py).
"""

from __future__ import annotations

import difflib
import re


class DlexpError(Exception):
    """Base class for problems in the user's input: configs, data files, shapes, devices."""


class ConfigError(DlexpError, ValueError):
    """An invalid configuration value or combination."""


class DataError(DlexpError):
    """Missing, unreadable or malformed data."""


def closest(name: str, known, prefix: str = "") -> str:
    """`; did you mean X?` for the nearest known name (after `prefix`, as `optim.`), or nothing."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f"; did you mean {prefix}{match[0]}?" if match else ""


def user_errors() -> tuple[type[BaseException], ...]:
    """What composing a config raises at the user: dlexp's errors, Hydra's and OmegaConf's."""
    from hydra.errors import HydraException  # not at import: the libraries import this module
    from omegaconf.errors import OmegaConfBaseException  # (as above)

    return (DlexpError, HydraException, OmegaConfBaseException)


def job_user_errors() -> tuple[type[BaseException], ...]:
    """User errors inside a running job (train()); anything else there is a dlexp bug."""
    from omegaconf.errors import MissingMandatoryValue  # not at import: see user_errors

    return (DlexpError, MissingMandatoryValue)


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _missing_option(err) -> str:
    """`model=foo` (a MissingConfigException): name the group and list its options."""
    path = err.missing_cfg_file or ""
    group, _, option = path.rpartition("/")
    if group and err.options is not None:
        hint = closest(option, err.options)
        return f"unknown {group} option {option!r}{hint}; choose one of {', '.join(err.options)}"
    return first_line(str(err))


# OmegaConf's type errors, in dlexp's words: (pattern of its message, what the value should be)
_CONVERSION = re.compile(r"Value '(.*)' of type '\w+' could not be converted to (\w+)")
_KINDS = {"Int": "an integer", "Integer": "an integer", "Float": "a number",
          "Bool": "true or false", "Boolean": "true or false", "String": "a string",
          "Str": "a string"}  # fmt: skip
_CONTAINER = re.compile(r"(\w+) is not a (ListConfig|DictConfig)")


def _type_message(message: str) -> str:
    """`expected a number, got 'abc'` for OmegaConf's conversion and container errors."""
    conversion = _CONVERSION.search(message)
    if conversion:
        kind = _KINDS.get(conversion[2], conversion[2].lower())
        return f"expected {kind}, got '{conversion[1]}'"
    container = _CONTAINER.search(message)
    if container:
        kind = "a list" if container[2] == "ListConfig" else "a mapping"
        return f"expected {kind}, got a {container[1]}"
    if "cannot be assigned None" in message or "is not Optional" in message:
        return "cannot be null"
    return message


def _omegaconf_error(err, context: str = "") -> str:
    """A type or key error from OmegaConf, in dlexp's words: the key, what was wrong, and the
    nearest known key."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError  # see user_errors

    key = getattr(err, "full_key", None) or getattr(err, "key", None) or ""
    message = first_line(getattr(err, "msg", None) or str(err))
    missing = re.search(r"Missing mandatory value: ([\w.]+)", str(err))
    if missing:  # `???` in a config, such as model=custom's model.name
        return f"{missing[1]} needs a value: add {missing[1]}=<value> to the command line"
    parent = getattr(err, "parent_node", None)
    if isinstance(err, (ConfigKeyError, ConfigAttributeError)) and hasattr(parent, "keys"):
        prefix = str(key).rpartition(".")[0]
        hint = closest(
            str(err.key), [str(k) for k in parent], prefix=f"{prefix}." if prefix else ""
        )
        return f"unknown key {key!r}{hint}"
    where = f"{context}: " if context else (f"{key}: " if key else "")
    return f"{where}{_type_message(message)}"


def one_line(err: BaseException) -> str:
    """The one-line message for a user error, Hydra's and OmegaConf's included."""
    from hydra.errors import (  # see user_errors
        HydraException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import OmegaConfBaseException  # see user_errors

    if isinstance(err, MissingConfigException):
        return _missing_option(err)
    if isinstance(err, OverrideParseException):
        override = getattr(err, "override", None) or ""
        return f"cannot parse the override {override}: {first_line(str(err))}".replace(" :", ":")
    cause = err.__cause__ or err.__context__
    if isinstance(err, HydraException) and isinstance(cause, OmegaConfBaseException):
        context = first_line(str(err)).removeprefix("Error merging override ")
        if context.startswith("Could not override"):
            context = f"unknown key {getattr(cause, 'full_key', '')!r}"
        return _omegaconf_error(cause, context)
    if isinstance(err, OmegaConfBaseException):
        return _omegaconf_error(err)
    return first_line(str(err)) or type(err).__name__


def failure_reason(err: BaseException) -> str:
    """One line for metrics.json: a user error's message, or a bug's type and first line."""
    if isinstance(err, job_user_errors()):
        return one_line(err)
    return f"{type(err).__name__}: {first_line(str(err))}".rstrip(": ")
