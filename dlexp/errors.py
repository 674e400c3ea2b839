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


def _what_it_takes(group: str, node) -> str:
    """` (model numpy_mlp takes dtype, ...)` for a key unknown inside a group; nothing at the
    top level, whose keys are many (--help lists them)."""
    if not group:
        return ""
    keys = sorted(str(k) for k in node if k != "name")
    try:
        name = node.get("name") if "name" in node else None
    except Exception:  # a `???` or unresolvable name: the group alone
        name = None
    label = f"{group} {name}" if isinstance(name, str) else group
    return f" ({label} takes {', '.join(keys) or 'no keys'})"


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
        takes = "" if hint else _what_it_takes(prefix, parent)  # a near name says enough
        return f"unknown key {key!r}{hint}{takes}"
    where = f"{context}: " if context else (f"{key}: " if key else "")
    return f"{where}{_type_message(message)}"


# Hydra's composition errors about the command line's form, in dlexp's words. Each pattern's
# groups name the key; the override as typed (when found on the command line) completes the hint.
_AMBIGUOUS = re.compile(r"Ambiguous value for argument '([^']*)'|Sweep parameters '([^']*)'")
_TWO_CHOICES = re.compile(r"Multiple values for ([\w/.]+)\.")
_APPENDED = re.compile(r"Could not append to config\. An item is already at '([^']*)'")


def _typed(key: str, overrides, prefix: str = "") -> str | None:
    """The override of `key` as the user typed it (`+max_steps=20`), or None."""
    return next((o for o in overrides if o.startswith(f"{prefix}{key}=")), None)


def _command_line_form(message: str, overrides) -> str | None:
    """A sweep without -m, `+` on a group or key that has a value: what to type instead."""
    ambiguous = _AMBIGUOUS.search(message)
    if ambiguous:
        override = ambiguous[1] or ambiguous[2]
        return f"{override}: to sweep these values, add -m (a list is written [a,b])"
    two = _TWO_CHOICES.search(message)
    if two:
        key = two[1]
        typed = _typed(key, overrides, "+")
        option = typed.split("=", 1)[1] if typed else "..."
        return f"{typed or '+' + key}: {key} is a config group; use {key}={option} (no +)"
    appended = _APPENDED.search(message)
    if appended:
        key = appended[1]
        typed = _typed(key, overrides, "+")
        instead = f": write {typed[1:]}" if typed else ""
        return f"{key} exists; drop the +{instead}"
    return None


def _parse_error(err, override: str) -> str:
    """An override Hydra's grammar refuses; a `~` in a value (a home folder) needs quotes."""
    if "~" in override.partition("=")[2]:
        key, _, value = override.partition("=")
        return f"cannot parse the override {override}: quote a value with ~ ({key}='{value}')"
    return f"cannot parse the override {override}: {first_line(str(err))}".replace(" :", ":")


def one_line(err: BaseException, overrides=()) -> str:
    """The one-line message for a user error, Hydra's and OmegaConf's included; `overrides`
    (the command line's) lets a hint quote what the user typed."""
    from hydra.errors import (  # see user_errors
        HydraException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import OmegaConfBaseException  # see user_errors

    if isinstance(err, MissingConfigException):
        return _missing_option(err)
    if isinstance(err, OverrideParseException):
        return _parse_error(err, getattr(err, "override", None) or "")
    form = _command_line_form(str(err), overrides) if isinstance(err, HydraException) else None
    if form:
        return form
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
