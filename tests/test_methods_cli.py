"""`tunesmith methods list|show` come from the registry and count what a method trains."""

import pytest

from tunesmith.cli.main import run
from tunesmith.methods import METHODS


def test_methods_list_shows_every_registered_method(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    run(["methods", "list"])
    out = capsys.readouterr().out
    for spec in METHODS:
        line = next(l for l in out.splitlines() if l.startswith(f"│ {spec.name} "))
        assert spec.summary in line and ("yes" if spec.mergeable else "no") in line


def test_methods_show_counts_trainable_parameters(tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    run(["methods", "show", "lora", "--model", str(tiny_model_dir), "r=2", "target_modules=[q_proj]"])
    out = capsys.readouterr().out
    # tiny llama: 2 layers, q_proj 32x32 -> A (2x32) + B (32x2) per layer = 256
    last = out.strip().splitlines()[-1]
    assert "trainable params 256 of " in last and "%" in last
    assert "Module names to adapt (e.g. [q_proj, v_proj])" in out


def test_methods_show_rejects_unknown_option(tiny_model_dir, capsys):
    with pytest.raises(SystemExit) as exit_:
        run(["methods", "show", "ia3", "--model", str(tiny_model_dir), "rank=4"])
    assert exit_.value.code == 2
    assert "method.rank" in capsys.readouterr().err
