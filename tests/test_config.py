"""Config: defaults, overrides, and errors that name the file, line and key."""

import os
from pathlib import Path

import pytest
import yaml

from tunesmith.config import load_config
from tunesmith.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_overrides_and_defaults(tmp_path):
    path = _write(tmp_path, "data:\n  train: a.jsonl\nmethod:\n  name: lora\n  r: 8\n")
    cfg = load_config(path, ["train.learning_rate=1e-4", "method.alpha=4", "data.eval=[b.jsonl]"])
    assert cfg.train.learning_rate == 1e-4 and cfg.method.r == 8 and cfg.method.alpha == 4
    # the file's path is relative to the config's folder; an override's to the working directory
    assert cfg.data.train == [str(tmp_path / "a.jsonl")] and cfg.data.eval == ["b.jsonl"]
    assert cfg.output.dir == "runs/run"
    dumped = cfg.model_dump(mode="json")
    assert dumped["method"]["r"] == 8 and "dropout" in dumped["method"]  # defaults written out


def test_method_switch_by_override(tmp_path):
    path = _write(tmp_path, "method: lora\n")
    cfg = load_config(path, ["method.name=freeze", "method.trainable_layers=1"])
    assert cfg.method.name == "freeze" and cfg.method.trainable_layers == 1


@pytest.mark.parametrize(
    "text, override, message",
    [
        ("train:\n  epochs: 1\n  learnig_rate: 1\n", None,
         r"run.yaml line 3: unknown key 'train.learnig_rate'. Did you mean 'learning_rate'"),
        ("train:\n  batch_size: zero\n", None,
         r"run.yaml line 2: train.batch_size: must be a whole number > 0 or .auto."),
        ("method:\n  name: lora\n  r: 0\n", None, r"run.yaml line 3: method.r: Input should be greater than 0"),
        ("method:\n  name: lorra\n", None, r"run.yaml line 1: method: unknown method 'lorra'. Did you mean 'lora'"),
        ("modle:\n  name_or_path: x\n", None, r"unknown key 'modle'. Did you mean 'model'"),
        ("train:\n  epochs: 1\n", "train.learning_rate=-1",
         r"override 'train.learning_rate=-1': train.learning_rate: must be a number > 0"),
        ("data:\n  train: [a\n", None, r"run.yaml:\d+: invalid YAML"),
    ],
)
def test_errors_name_the_place(tmp_path, text, override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text), [override] if override else [])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_config_validates(example):
    from conftest import shared

    cfg = load_config(example)
    for path in cfg.data.train + cfg.data.eval:  # relative to examples/, so absolute here
        if "/shared/datasets/" in path:  # beside the checkout (or its parent, for worktrees)
            assert path == os.path.normpath(EXAMPLES.parent / ".." / "shared" / "datasets" / path.split(
                "/shared/datasets/", 1)[1]), path
            assert shared(*Path(path.split("/shared/datasets/", 1)[1]).parts).is_file(), path
        else:
            assert (EXAMPLES.parent / path).exists() or Path(path).exists(), path


def test_schema_documents_every_field():
    from tunesmith.config.schema_doc import full_schema

    schema = full_schema()
    for section in schema["$defs"].values():
        for name, prop in section.get("properties", {}).items():
            assert prop.get("description"), f"{section['title']}.{name} has no description"
    for kind in ("x-methods", "x-tasks"):
        for name, component in schema[kind].items():
            for field, prop in component["properties"].items():
                if field != "name":  # the registry key, documented by `tunesmith methods list`
                    assert prop.get("description"), f"{kind} {name}.{field} has no description"
    assert "lora" in schema["x-methods"] and "sft" in schema["x-tasks"]
    yaml.safe_dump(schema)
