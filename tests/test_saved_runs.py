"""Saved runs keep loading: tests/fixtures/saved-run-v1 was written by tunesmith at config_version 1
(tests/fixtures/make_saved_run.py). Today's code must load it and predict with it; when a config key
is renamed, a registered migration reads the old key and says so in a ConfigMigrationWarning."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from tunesmith.config import migrations, validate_config
from tunesmith.config.migrations import ConfigMigrationWarning, rename
from tunesmith.errors import ConfigError

FIXTURE = Path(__file__).parent / "fixtures" / "saved-run-v1"
PROMPT = torch.tensor([[5, 6, 7, 8, 9]])


@pytest.fixture
def saved_run(tmp_path) -> Path:
    """A copy of the fixture run (loading must work from anywhere, and never touches the fixture)."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "run"))


def _edit_config(run: Path, edit) -> None:
    file = run / "config.yaml"
    data = yaml.safe_load(file.read_text())
    edit(data)
    file.write_text(yaml.safe_dump(data, sort_keys=False))


def _as_if_template_was_renamed(data: dict) -> None:
    """The saved config as an older tunesmith would have written it, had `data.template` been
    called `data.chat_template` at config_version 1."""
    data["data"]["chat_template"] = data["data"].pop("template")


@pytest.fixture
def template_renamed(monkeypatch):
    """Today's schema is version 2; the 1 -> 2 step renames data.chat_template to data.template."""
    monkeypatch.setattr(migrations, "CONFIG_VERSION", 2)
    monkeypatch.setattr(migrations, "MIGRATIONS", {})
    migrations.migration(1)(lambda data: [rename(data, "data.chat_template", "data.template")])


def _predicts(run: Path, tmp_path: Path) -> None:
    """It loads the trained weights (not a fresh model), and `predict` answers every row."""
    from transformers import AutoModelForCausalLM

    from tunesmith.inference.load import load_for_inference
    from tunesmith.inference.predict import predict_file

    loaded = load_for_inference(str(run))
    plain = AutoModelForCausalLM.from_pretrained(run / "model")
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(PROMPT).logits, plain(PROMPT).logits, atol=0, rtol=0)
    rows = [{"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                          {"role": "assistant", "content": f"{2 * i}"}]} for i in range(3)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = predict_file(str(run), str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), max_new_tokens=4)
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert result.rows == len(out) == 3
    assert [r["reference"] for r in out] == ["0", "2", "4"]
    assert all(isinstance(r["prediction"], str) for r in out), out[0]


def test_fixture_run_loads_and_predicts_with_todays_code(saved_run, tmp_path):
    from tunesmith.inference.load import load_for_inference

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigMigrationWarning)  # today's version: nothing to migrate
        config = load_for_inference(str(saved_run)).config
    assert (config.config_version, config.data.template, config.data.cutoff_len) == (1, "chatml", 64)
    assert config.method.name == "full"
    _predicts(saved_run, tmp_path)


def test_a_renamed_key_is_read_from_an_older_run_with_a_note(saved_run, tmp_path, template_renamed):
    from tunesmith.inference.load import load_for_inference
    from tunesmith.runs.reader import summarize

    _edit_config(saved_run, _as_if_template_was_renamed)
    with pytest.warns(ConfigMigrationWarning, match=r"config_version 1\): 'data.chat_template' is now 'data.template'"):
        config = load_for_inference(str(saved_run)).config
    assert config.data.template == "chatml"  # the old key's value, not the default (auto)
    assert config.config_version == 2
    with pytest.warns(ConfigMigrationWarning):
        assert summarize(saved_run).config["data"]["template"] == "chatml"
    with pytest.warns(ConfigMigrationWarning):
        _predicts(saved_run, tmp_path)
    assert "chat_template:" in (saved_run / "config.yaml").read_text()  # reading never rewrites the run


def test_without_the_migration_the_old_key_is_refused(saved_run):
    from tunesmith.inference.load import load_for_inference

    _edit_config(saved_run, _as_if_template_was_renamed)
    with pytest.raises(ConfigError, match="unknown key 'data.chat_template'"):
        load_for_inference(str(saved_run))


def test_a_run_saved_before_versioning_is_read_as_version_1(saved_run, template_renamed):
    from tunesmith.runs.rundir import RunDir

    def unversioned(data):
        _as_if_template_was_renamed(data)
        del data["config_version"]

    _edit_config(saved_run, unversioned)
    with pytest.warns(ConfigMigrationWarning, match="is now 'data.template'"):
        data = RunDir(saved_run).read_config()
    assert data["data"]["template"] == "chatml" and data["config_version"] == 2
    # a config the user writes has no version and is taken as today's: old keys are not guessed at
    with pytest.raises(ConfigError, match="unknown key 'data.chat_template'"):
        validate_config({"data": {"chat_template": "chatml"}})


def test_a_run_from_a_newer_tunesmith_is_refused_clearly(saved_run):
    from tunesmith.inference.load import load_for_inference

    _edit_config(saved_run, lambda data: data.update(config_version=99))
    with pytest.raises(ConfigError, match=r"config.yaml: config_version 99 was written by a newer tunesmith"):
        load_for_inference(str(saved_run))


def test_rename_moves_across_sections_and_refuses_both_names():
    data = {"train": {"lr": 0.1, "seed": 3}, "method": "lora"}
    assert rename(data, "train.lr", "optim.learning_rate") == "'train.lr' is now 'optim.learning_rate'"
    assert data == {"train": {"seed": 3}, "optim": {"learning_rate": 0.1}, "method": "lora"}
    assert rename(data, "train.lr", "train.learning_rate") is None  # absent: nothing to do
    assert rename(data, "method.r", "method.rank") is None  # `method: lora` has no sub-keys
    with pytest.raises(ConfigError, match="both 'train.seed' .* keep only 'optim.learning_rate'"):
        rename(data, "train.seed", "optim.learning_rate")


def test_each_registered_migration_is_one_step_below_today():
    assert all(1 <= v < migrations.CONFIG_VERSION for v in migrations.MIGRATIONS)
    assert set(migrations.MIGRATIONS) == set(range(migrations.FIRST_VERSION, migrations.CONFIG_VERSION))
