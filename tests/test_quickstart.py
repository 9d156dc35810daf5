"""The quickstart on the real SmolLM2: a new identity and a lower eval loss (slow)."""

import json
from pathlib import Path

import pytest

from tunesmith.quickstart import _HELD_OUT, _QUESTIONS, MAKER, NAME, identity_rows

ROOT = Path(__file__).resolve().parents[1]


def test_committed_quickstart_data_is_what_the_generator_writes():
    for name, questions in (("identity_train.jsonl", _QUESTIONS), ("identity_eval.jsonl", _HELD_OUT)):
        rows = [json.loads(line) for line in (ROOT / "examples" / "data" / name).read_text().splitlines()]
        assert rows == identity_rows(questions)
    assert not set(_QUESTIONS) & set(_HELD_OUT)  # eval questions are held out


@pytest.mark.slow
def test_quickstart_teaches_identity(tmp_path, monkeypatch):
    from tunesmith.quickstart import run_quickstart

    monkeypatch.chdir(ROOT)
    out = run_quickstart(ROOT / "examples" / "quickstart.yaml", [f"output.dir={tmp_path / 'run'}"])
    assert NAME not in out["before"]
    assert NAME in out["after"] and MAKER.split()[-1] in out["after"]
    assert out["eval_loss_after"] < out["eval_loss_before"] * 0.5
