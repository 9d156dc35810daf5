"""Paths written in a config file are relative to the config's folder (docs/data.md), and
`config check` checks that the files a config reads exist."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from inproc import cli
from tunesmith.config import load_config

REPO = Path(__file__).resolve().parents[1]


def _cli(capsys, *args) -> tuple[int, str]:
    code, out, err = cli(capsys, *args)
    return code, out + err


def _project(root: Path) -> Path:
    (root / "configs" / "data").mkdir(parents=True)
    (root / "configs" / "data" / "train.jsonl").write_text('{"text": "hello"}\n')
    (root / "configs" / "terms.yaml").write_text("colour: color\n")
    config = root / "configs" / "run.yaml"
    config.write_text("data:\n  train: data/train.jsonl\n  eval: [data/train.jsonl]\n"
                      "  pipeline:\n    - {step: clean, glossary: terms.yaml}\n"
                      "    - {step: mix, weights: {data/train.jsonl: 1}}\n"
                      "model:\n  name_or_path: smollm2-135m-instruct\noutput:\n  dir: runs/x\n")
    return config


def test_paths_in_a_config_are_relative_to_its_folder_from_any_working_directory(tmp_path, monkeypatch):
    config = _project(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (tmp_path, elsewhere, config.parent):
        monkeypatch.chdir(cwd)
        cfg = load_config(os.path.relpath(config, cwd))
        train = config.parent / "data" / "train.jsonl"
        assert [Path(p).resolve() for p in cfg.data.train + cfg.data.eval] == [train, train]
        assert Path(cfg.data.pipeline[0].glossary).resolve() == config.parent / "terms.yaml"
        assert cfg.model.name_or_path == "smollm2-135m-instruct"  # a zoo name is not a path
        assert cfg.output.dir == "runs/x"  # the run directory stays relative to the working directory


def test_overrides_stay_relative_to_the_working_directory(tmp_path, monkeypatch):
    config = _project(tmp_path / "project")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(config, ["data.train=mine.jsonl"])
    assert cfg.data.train == ["mine.jsonl"]


def test_a_local_model_beside_the_config_is_found(tmp_path, monkeypatch):
    config = _project(tmp_path / "project")
    (config.parent / "base").mkdir()
    config.write_text(config.read_text().replace("smollm2-135m-instruct", "./base"))
    monkeypatch.chdir(tmp_path)
    assert Path(load_config(config).model.name_or_path).resolve() == config.parent / "base"


def test_the_mix_step_still_finds_files_named_by_relative_path(tmp_path, monkeypatch):
    from tunesmith.config import validate_config
    from tunesmith.data.load import LoadReport
    from tunesmith.data.prepare import pipeline_records

    config = _project(tmp_path / "project")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(config)
    cfg = validate_config({**cfg.model_dump(mode="json"), "task": {"name": "pretrain"}})
    train, _, report = pipeline_records(cfg, LoadReport())
    assert [r["text"] for r in train] == ["hello"]
    assert report["pipeline"][1]["rows_out"] == 1


@pytest.mark.parametrize("key, edit", [
    ("data.train", lambda text: text.replace("train: data/train.jsonl", "train: data/missing.jsonl")),
    ("data.eval", lambda text: text.replace("eval: [data/train.jsonl]", "eval: [data]")),
    ("data.pipeline.0.glossary", lambda text: text.replace("terms.yaml", "no-terms.yaml")),
])
def test_config_check_names_a_missing_file_by_key_and_path(tmp_path, capsys, key, edit):
    config = _project(tmp_path / "project")
    code, out = _cli(capsys, "config", "check", config)
    assert code == 0 and "ok" in out
    config.write_text(edit(config.read_text()))
    code, out = _cli(capsys, "config", "check", config)
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, out
    assert key in errors[0] and str(config) in errors[0] and "line" in errors[0]
    assert str(config.parent) in errors[0]  # the path as resolved: inside the config's folder


def test_config_check_names_a_missing_file_given_as_override(tmp_path, capsys):
    config = _project(tmp_path / "project")
    code, out = _cli(capsys, "config", "check", config, f"data.train={tmp_path / 'gone.jsonl'}")
    assert code == 2 and "override" in out and "data.train" in out and "gone.jsonl" in out


def _examples() -> list[Path]:
    return sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", _examples(), ids=lambda p: p.name)
def test_example_configs_read_the_same_files_as_before(example, monkeypatch):
    """Written relative to the repository root before; now relative to examples/, naming the same files."""
    monkeypatch.chdir(REPO)
    cfg = load_config(example)
    roots = (REPO / "examples" / "data", REPO.parent / "shared" / "datasets")
    for path in cfg.data.train + cfg.data.eval:
        full = Path(os.path.abspath(path))
        assert any(full.is_relative_to(root) for root in roots), path


def test_the_quickstart_config_checks_from_anywhere(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = _cli(capsys, "config", "check", REPO / "examples" / "quickstart.yaml")
    assert code == 0, out
    shown = json.loads(_cli(capsys, "config", "show", REPO / "examples" / "quickstart.yaml", "--json")[1])
    assert Path(shown["data"]["train"][0]).resolve() == REPO / "examples" / "data" / "identity_train.jsonl"


def test_a_resolved_config_saved_elsewhere_reads_the_same_files(tmp_path, monkeypatch):
    """What a run saves as config.yaml (and a sweep copies to best.yaml) keeps naming the same files."""
    import yaml

    config = _project(tmp_path / "project")
    monkeypatch.chdir(tmp_path)
    first = load_config(os.path.relpath(config))
    saved = tmp_path / "runs" / "x" / "config.yaml"
    saved.parent.mkdir(parents=True)
    saved.write_text(yaml.safe_dump(first.model_dump(mode="json")))
    monkeypatch.chdir(saved.parent)
    again = load_config(saved)
    assert again.data.train == first.data.train and again.data.pipeline[0].glossary == first.data.pipeline[0].glossary
    assert Path(again.data.train[0]).is_file()
