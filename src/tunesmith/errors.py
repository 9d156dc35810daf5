"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class TunesmithError(Exception):
    """A problem with the user's input: the message names the file, line or key and the fix."""


class ConfigError(TunesmithError):
    """An invalid run configuration."""


class DataError(TunesmithError):
    """Unreadable, malformed or empty training data."""


class ModelError(TunesmithError):
    """A model that cannot be found or loaded."""


class RunDirError(TunesmithError):
    """A run directory that is missing, incomplete or already taken."""
