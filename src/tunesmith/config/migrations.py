"""Saved runs keep loading: config.yaml carries a `config_version`, and each step to the next
version is one function here that renames or moves keys and says what it did.

When a key of the run config is renamed, bump CONFIG_VERSION and register the step:

    @migration(1)  # 1 -> 2
    def _learning_rate_renamed(data):
        return [rename(data, "train.lr", "train.learning_rate")]

A config without `config_version` is taken as today's when a user wrote it, and as version 1
(the first versioned schema) when a run saved it: runs saved before versioning have none.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

from tunesmith.errors import ConfigError

CONFIG_VERSION = 1  # the version this tunesmith writes; bump it with each registered step
FIRST_VERSION = 1  # runs saved before configs carried a version
MIGRATIONS: dict[int, Callable[[dict], list[str | None]]] = {}  # from version -> step to version + 1


class ConfigMigrationWarning(UserWarning):
    """A saved config was written by an older tunesmith and read with today's keys."""


def migration(from_version: int):
    """Register the step that brings a config from `from_version` to `from_version + 1`."""

    def register(step: Callable[[dict], list[str | None]]):
        if from_version in MIGRATIONS:
            raise ValueError(f"a migration from config_version {from_version} is already registered")
        MIGRATIONS[from_version] = step
        return step

    return register


def rename(data: dict, old: str, new: str) -> str | None:
    """Move the value at dotted key `old` to `new` (sections are created); a note, or None when absent."""
    *old_path, old_key = old.split(".")
    parent = _section(data, old_path, create=False)
    if parent is None or old_key not in parent:
        return None
    value = parent.pop(old_key)
    *new_path, new_key = new.split(".")
    target = _section(data, new_path, create=True)
    if new_key in target:
        raise ConfigError(f"config has both {old!r} (the old name) and {new!r}; keep only {new!r}")
    target[new_key] = value
    return f"{old!r} is now {new!r}"


def _section(data: dict, path: list[str], create: bool) -> dict | None:
    node = data
    for part in path:
        if not isinstance(node.get(part), dict):
            if not create or part in node:  # a string section ("method: lora") has no sub-keys to move
                return None
            node[part] = {}
        node = node[part]
    return node


def upgrade(data: dict, source: str, unversioned: int | None = None) -> dict:
    """`data` with today's keys: the registered steps applied from its config_version on, each
    note issued as a ConfigMigrationWarning naming `source`. The caller's dict is not changed."""
    version = data.get("config_version", CONFIG_VERSION if unversioned is None else unversioned)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"{source}: config_version must be a whole number >= 1 (got {version!r})")
    if version > CONFIG_VERSION:
        raise ConfigError(f"{source}: config_version {version} was written by a newer tunesmith (this one "
                          f"reads up to {CONFIG_VERSION}); upgrade tunesmith to load it")
    if version == CONFIG_VERSION:
        return data
    data = copy.deepcopy(data)
    for step_from in range(version, CONFIG_VERSION):
        step = MIGRATIONS.get(step_from)
        if step is None:
            raise ConfigError(f"{source}: no migration from config_version {step_from} (a tunesmith bug)")
        for note in filter(None, step(data)):
            warnings.warn(f"{source} (config_version {step_from}): {note}", ConfigMigrationWarning,
                          stacklevel=3)
    data["config_version"] = CONFIG_VERSION
    return data
