"""The one way tunesmith reads YAML (configs, glossaries, synonym lists, sweep spaces, a run's
saved config): safe types only, and every way a file can be broken is one clear error.

Broken means: not UTF-8 text (a binary file), invalid YAML (with its line), nesting deeper
than anything a person writes, or aliases that refer to themselves or multiply into more
values than any config holds (`a: &x [*x]`, "billion laughs"). PyYAML builds such values
without complaint and the first code to walk them fails with a RecursionError or runs out
of memory, far from the file; they are caught here instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tunesmith.errors import TunesmithError

MAX_VALUES = 1_000_000  # lists, mappings and scalars after aliases are expanded
MAX_DEPTH = 100
# libyaml when installed: pure-Python PyYAML takes seconds on a few thousand nested brackets
# (its scanner is quadratic in the nesting), libyaml refuses them at once.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml_text(path: str | os.PathLike, error: type[TunesmithError] = TunesmithError, what: str = "file") -> str:
    """The UTF-8 text of a YAML file (a byte-order mark is dropped), or `error` naming the line."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{what} {path} is a directory, not a file")
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise error(f"{path}:{line}: not UTF-8 text (a binary file?); {what} must be YAML text") from None


def parse_yaml(text: str, source: str, error: type[TunesmithError] = TunesmithError) -> Any:
    """The value of a YAML document, checked as the module docstring says."""
    try:
        value = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader, C or Python
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(err, "problem", None) or getattr(err, "reason", None) or str(err).splitlines()[0]
        raise error(f"{where}: invalid YAML ({problem})") from None
    except RecursionError:  # pure-Python PyYAML (without libyaml) on deep nesting
        raise error(f"{source}: YAML nested too deeply to read") from None
    _check_shape(value, source, error)
    return value


def read_yaml(path: str | os.PathLike, error: type[TunesmithError] = TunesmithError, what: str = "file") -> Any:
    """Read and parse a YAML file (see parse_yaml)."""
    return parse_yaml(read_yaml_text(path, error, what), str(path), error)


def _check_shape(value: Any, source: str, error: type[TunesmithError]) -> None:
    """Depth and size of the value as if aliases were copied, without recursion: each distinct
    list/mapping is measured once (post-order, memoised), so an alias bomb costs nothing."""
    measured: dict[int, tuple[int, int]] = {}  # id -> (values inside, depth)
    on_path: set[int] = set()  # lists/mappings being measured: meeting one again is a loop
    stack = [(value, False)]
    while stack:
        item, children_done = stack.pop()
        if not isinstance(item, (dict, list)) or (id(item) in measured and not children_done):
            continue
        children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        nested = [child for child in children if isinstance(child, (dict, list))]
        if children_done:
            inner = [measured[id(child)] for child in nested]
            size = len(children) + sum(n for n, _ in inner)
            depth = 1 + max((d for _, d in inner), default=0)
            if size > MAX_VALUES:
                raise error(f"{source}: YAML aliases expand to more than {MAX_VALUES:,} values; "
                            "write the values out instead of repeating aliases")
            if depth > MAX_DEPTH:
                raise error(f"{source}: YAML nested more than {MAX_DEPTH} levels deep")
            measured[id(item)] = (size, depth)
            on_path.discard(id(item))
            continue
        if id(item) in on_path:
            raise error(f"{source}: a YAML alias refers to itself (e.g. `a: &x [*x]`); remove the loop")
        on_path.add(id(item))
        stack.append((item, True))
        stack.extend((child, False) for child in nested)
