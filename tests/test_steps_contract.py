"""One contract over every registered data step: adding a step to STEPS adds it here.

Each step runs with its `example` options (declared on the step) through `apply_step`, the call
behind `tunesmith data <step>`, on two small files. For every step: the report counts the rows
in and out (and the written report says the same); the same options and seed give the same
output, byte for byte; the input files are never modified, and neither are the rows a pipeline
hands a step; and the example does something (the rows out differ from the rows in).
"""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from tunesmith.data.steps import STEPS, run_pipeline
from tunesmith.data.tools import apply_step
from tunesmith.utils.io import read_jsonl

ORIGIN = "_origin"
TRAIN = [
    {"instruction": "Classify the review.", "input": "the quick brown fox is a fine film", "output": "positive",
     "label": "positive", "group": "a", "date": "2024-01-01"},
    {"instruction": "Classify the review.", "input": "the quick brown fox is a fine film", "output": "positive",
     "label": "positive", "group": "a", "date": "2024-01-02"},  # a duplicate
    {"instruction": "Classify the review.", "input": "<b>a dull and lazy dog</b> mail me at x@y.com",
     "output": "negative", "label": "negative", "group": "b", "date": "2024-01-03"},
    {"instruction": "Classify the review.", "input": "hello world what a quick brown story", "output": "positive",
     "label": "positive", "group": "b", "date": "2024-01-04"},
    {"instruction": "Classify the review.", "input": "who wrote this lazy thing", "output": "negative",
     "label": "negative", "group": "c", "date": "2024-01-05"},
    {"instruction": "Classify the review.", "input": "the answer to the benchmark question is forty two",
     "output": "positive", "label": "positive", "group": "c", "date": "2024-01-06"},  # in eval.jsonl
    {"instruction": "Classify the review.", "input": "brown fox jumps quick", "output": "positive",
     "label": "positive", "group": "d", "date": "2024-01-07"},
    {"instruction": "Classify the review.", "input": "ok", "output": "positive", "label": "positive",
     "group": "d", "date": "2024-01-08"},
]
EXTRA = [
    {"instruction": "Say the number.", "input": f"number {i} in words", "output": str(i),
     "label": "positive" if i % 2 else "negative", "group": "e", "date": f"2024-02-0{i + 1}"}
    for i in range(4)
]
EVAL = [{"instruction": "Classify the review.", "input": "the answer to the benchmark question is forty two",
         "output": "positive"}]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # example options name files relative to here
    _write(tmp_path / "eval.jsonl", EVAL)
    return [str(_write(tmp_path / "train.jsonl", TRAIN)), str(_write(tmp_path / "extra.jsonl", EXTRA))]


@pytest.fixture(params=STEPS.names())
def step(request):
    return STEPS.get(request.param)


def _options(step) -> dict:
    return {"step": step.name, **step.example}


def _rows() -> list[dict]:
    """The rows as a pipeline hands them to a step: each with its file:line."""
    return ([{**r, ORIGIN: f"train.jsonl:{i + 1}"} for i, r in enumerate(TRAIN)]
            + [{**r, ORIGIN: f"extra.jsonl:{i + 1}"} for i, r in enumerate(EXTRA)])


def _digest(paths) -> list[str]:
    return [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths]


def test_the_report_counts_rows_in_and_out(step, files, tmp_path):
    report = apply_step(files, _options(step), tmp_path / "out.jsonl", tmp_path / "report.json")
    written = read_jsonl(tmp_path / "out.jsonl")
    assert (report.step, report.rows_in, report.rows_out) == (step.name, len(TRAIN) + len(EXTRA), len(written))
    saved = json.loads((tmp_path / "report.json").read_text())
    assert (saved["step"], saved["rows_in"], saved["rows_out"]) == (step.name, report.rows_in, report.rows_out)


def test_the_example_changes_the_rows(step, files):
    rows = _rows()
    out, (report,) = run_pipeline(copy.deepcopy(rows), [_options(step)], {"seed": 3})
    assert out != rows, f"{step.name}: its example options change nothing"  # rows, fields or tags (_split)
    assert (report.rows_in, report.rows_out) == (len(rows), len(out))


def test_the_same_seed_gives_the_same_output(step, files, tmp_path):
    for name in ("a.jsonl", "b.jsonl"):
        apply_step(files, {**_options(step), **({"seed": 7} if "seed" in step.Options.model_fields else {})},
                   tmp_path / name, keep_origin=True)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    rows = _rows()
    first, _ = run_pipeline(copy.deepcopy(rows), [_options(step)], {"seed": 3})
    again, _ = run_pipeline(copy.deepcopy(rows), [_options(step)], {"seed": 3})
    assert first == again


def test_inputs_are_never_modified(step, files, tmp_path):
    before = _digest(files)
    apply_step(files, _options(step), tmp_path / "out.jsonl")
    assert _digest(files) == before
    rows = _rows()
    handed = copy.deepcopy(rows)
    run_pipeline(handed, [_options(step)], {"seed": 3})
    assert handed == rows, f"{step.name} changed the rows it was given in place"
