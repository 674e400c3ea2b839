"""Errors that a user can fix; the entrypoints print them as one line."""


class DlexpError(Exception):
    """Base class for problems in the user's input: configs, data files, shapes, devices."""


class ConfigError(DlexpError, ValueError):
    """An invalid configuration value or combination."""


class DataError(DlexpError):
    """Missing, unreadable or malformed data."""
