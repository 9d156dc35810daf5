"""File paths written in a config file are relative to the config file's folder, not to the
working directory, so `tunesmith train path/to/run.yaml` reads the same files from anywhere.

Resolved: `data.train`, `data.eval`, every data step option that names files (declared with
`json_schema_extra=FILE`), and `model.name_or_path` when it names a file or folder beside the
config (zoo names and hub ids stay as written); they become absolute paths. Not resolved:
overrides given on the command line (relative to where you type them) and `output.dir` (the run
directory, like its default `runs/<config name>`, is relative to the working directory).
"""

from __future__ import annotations

import os
from pathlib import Path

from tunesmith.config.pipeline import STEP_OPTIONS
from tunesmith.errors import ConfigError


def resolve_paths(data: dict, config_file: Path) -> dict:
    """The raw config with its relative file paths made relative to `config_file`'s folder."""
    folder = config_file.parent
    section = data.get("data")
    if isinstance(section, dict):
        for key in ("train", "eval"):
            if key in section:
                section[key] = _resolved(section[key], folder)
        replay = section.get("replay")
        if isinstance(replay, dict) and "from" in replay:
            replay["from"] = _resolved(replay["from"], folder)
        for task in section.get("tasks") or []:
            for key in ("train", "eval"):
                if isinstance(task, dict) and key in task:
                    task[key] = _resolved(task[key], folder)
        for step in section.get("pipeline") or []:
            if isinstance(step, dict):
                for key in _file_options(step.get("step")):
                    if key in step:
                        step[key] = _resolved(step[key], folder)
    model = data.get("model")
    if isinstance(model, dict) and isinstance(model.get("from_run"), str):
        model["from_run"] = _resolved(model["from_run"], folder)
    if isinstance(model, dict) and isinstance(model.get("name_or_path"), str):
        beside = _resolved(model["name_or_path"], folder)
        if Path(beside).exists():  # a local model next to the config; otherwise a zoo name or hub id
            model["name_or_path"] = beside
    return data


def _file_options(step: object) -> list[str]:
    if not isinstance(step, str) or step not in STEP_OPTIONS:
        return []  # an unknown step is reported when the config is validated
    fields = STEP_OPTIONS.get(step).model_fields
    return [name for name, f in fields.items() if (f.json_schema_extra or {}).get("file")]


def _resolved(value, folder: Path):
    """A path (or each path of a list) joined to `folder` unless absolute; mappings and other
    values (an inline glossary) are left alone. The result is absolute, so the run's saved
    config.yaml (and a sweep's best.yaml made from it) names the same files wherever it is read."""
    if isinstance(value, list):
        return [_resolved(v, folder) for v in value]
    if not isinstance(value, str) or not value.strip():
        return value
    path = os.path.expanduser(value)
    if os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(folder.resolve(), path))  # resolved first: `..` of a symlinked folder


def check_files(config, source: str, lines: dict | None = None) -> None:
    """ConfigError naming the key and path of the first input file of `config` that does not exist."""
    for key, path, want_file in input_files(config):
        p = Path(path)
        problem = ("not found" if not p.exists() else "is a folder, not a data file" if want_file and p.is_dir()
                   else None)
        if problem:
            where = _line(source, key, lines or {})
            raise ConfigError(f"{where}: {key}: {path} {problem}{_hint(path, source)}")


def input_files(config):
    """(key, path, must be a file) of every file or folder the config reads."""
    for name in ("train", "eval"):
        for i, path in enumerate(getattr(config.data, name)):
            yield f"data.{name}" + (f".{i}" if len(getattr(config.data, name)) > 1 else ""), path, True
    for t, task in enumerate(config.data.tasks):
        for name in ("train", "eval"):
            for i, path in enumerate(getattr(task, name)):
                yield f"data.tasks.{t}.{name}.{i}", path, True
    if config.data.replay:
        for i, path in enumerate(config.data.replay.from_):
            yield f"data.replay.from.{i}", path, False
    if config.model.from_run:
        yield "model.from_run", config.model.from_run, False
    for n, step in enumerate(config.data.pipeline):
        for key in _file_options(step.step):
            value = getattr(step, key)
            for path in value if isinstance(value, list) else [value]:
                if isinstance(path, str):
                    yield f"data.pipeline.{n}.{key}", path, False


def _line(source: str, key: str, lines: dict) -> str:
    parts = tuple(key.split("."))
    for n in range(len(parts), 0, -1):
        where = lines.get(parts[:n])
        if isinstance(where, int):
            return f"{source} line {where}"
        if isinstance(where, str):
            return where
    return source


def _hint(path: str, source: str) -> str:
    if not source.endswith((".yaml", ".yml")):
        return ""
    folder = Path(source).parent
    return f" (relative paths in a config are relative to its folder, {folder}/)" if str(folder) != "." else ""
