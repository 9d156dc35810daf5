"""Read a YAML config plus `key.sub=value` overrides into a validated RunConfig."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tunesmith.config.components import ComponentError
from tunesmith.config.migrations import upgrade
from tunesmith.config.paths import check_files as ensure_files
from tunesmith.config.paths import resolve_paths
from tunesmith.config.schema import RunConfig
from tunesmith.errors import ConfigError
from tunesmith.utils.yaml_files import parse_yaml, read_yaml_text


def load_config(path: str | Path | None, overrides: list[str] = (), check_files: bool = False) -> RunConfig:
    """Parse `path` (may be None for defaults only), apply overrides, validate. File paths in the
    file are relative to its folder (config/paths.py); with `check_files`, every input file must exist."""
    data: dict[str, Any] = {}
    lines: dict[tuple, int | str] = {}
    source = str(path) if path else "<overrides>"
    if path is not None:
        data, lines = _read_yaml(Path(path))
        resolve_paths(data, Path(path))
    for item in overrides:
        key = _apply_override(data, item)
        lines[key] = f"override {item!r}"
    config = validate_config(data, source, lines)
    if check_files:
        ensure_files(config, source, lines)
    if path is not None and config.output.dir is None:
        config.output.dir = str(Path("runs") / Path(path).stem)
    return config


def validate_config(data: dict, source: str = "<config>", lines: dict | None = None) -> RunConfig:
    """A RunConfig from plain data; a config_version older than today's is migrated first."""
    data = upgrade(data, source)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, lines or {})) from None


def config_problems(data: dict) -> list[dict]:
    """[{key, message}] of everything wrong in a config given as plain data (empty when valid):
    the checks of validate_config, one entry per problem with its dotted key, for forms."""
    try:
        RunConfig.model_validate(upgrade(data, "<config>"))
    except ConfigError as err:
        return [{"key": "config_version", "message": str(err)}]
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = tuple(str(p) for p in e["loc"])
            inner = (e.get("ctx") or {}).get("error")
            if isinstance(inner, ComponentError):
                problems += [{"key": ".".join(loc + tuple(k.split("."))), "message": m} for k, m in inner.problems]
            elif e["type"] == "extra_forbidden":
                problems.append({"key": ".".join(loc), "message": f"unknown key.{_did_you_mean(loc)}"})
            else:
                problems.append({"key": ".".join(loc), "message": e["msg"].removeprefix("Value error, ")})
        return problems
    return []


def _read_yaml(path: Path) -> tuple[dict, dict[tuple, int]]:
    text = read_yaml_text(path, ConfigError, "config file")
    data = parse_yaml(text, str(path), ConfigError)
    if data is None:
        raise ConfigError(f"{path}: the config is empty; it needs at least data.train "
                          "(`tunesmith config schema` lists every key)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (model, data, ...)")
    return data, _line_index(yaml.compose(text))  # parse_yaml has ruled out loops and deep nesting


def _line_index(node, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each key path of a YAML mapping to the 1-based line where it is written."""
    index: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = prefix + (key.value,)
            index[path] = key.start_mark.line + 1
            index.update(_line_index(value, path))
    elif isinstance(node, yaml.SequenceNode):  # list items, e.g. data.pipeline.2
        for i, item in enumerate(node.value):
            index[prefix + (str(i),)] = item.start_mark.line + 1
            index.update(_line_index(item, prefix + (str(i),)))
    return index


def _apply_override(data: dict, item: str) -> tuple:
    """Set one `key.sub=value` (value parsed as YAML) and return the key path."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    value = parse_yaml(raw, f"override {item!r}", ConfigError) if raw != "" else ""
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        if isinstance(node.get(part), str) and part in ("method", "task"):
            node[part] = {"name": node[part]}
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section")
    node[parts[-1]] = value
    return tuple(parts)


def format_validation_error(err: ValidationError, source: str, lines: dict[tuple, int]) -> str:
    """One line per problem: where it is, what is wrong, and how to fix it."""
    messages = []
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        inner = (e.get("ctx") or {}).get("error")
        if isinstance(inner, ComponentError):
            for key, problem in inner.problems:
                sub = loc + tuple(key.split("."))
                messages.append(f"{_where(source, sub, lines)}: {'.'.join(sub)}: {problem}")
            continue
        where = _where(source, loc, lines)
        key = ".".join(loc)
        if e["type"] == "extra_forbidden":
            hint = _did_you_mean(loc)
            messages.append(f"{where}: unknown key {key!r}.{hint}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
            messages.append(f"{where}: {key}: {msg}{shown}")
    return " | ".join(messages)


def _where(source: str, loc: tuple, lines: dict[tuple, int | str]) -> str:
    """Where the failing key was written: an override, or the YAML line of the key or its section."""
    for n in range(len(loc), 0, -1):
        where = lines.get(loc[:n])
        if isinstance(where, str):
            return where
        if where is not None:
            return f"{source} line {where}"
    return source


def _did_you_mean(loc: tuple) -> str:
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    valid = ", ".join(model.model_fields)
    return f" Did you mean {close[0]!r}?" if close else f" Valid keys: {valid}."
