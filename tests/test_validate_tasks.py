"""`data validate` and training agree on every row, for every registered task.

For each task (parametrised over TASKS, so a new task is covered without editing this file): a
file of the task's tiny good rows (tests/tiny_tasks.py), its `other_rows` (more layouts it reads
and rows it must turn down), rows of every other task's layout, and generic bad rows (an empty
object, a bare number, a malformed line). Training's data preparation with `on_bad_row: skip`
and `data validate --config` must name exactly the same bad rows; the good rows are good and the
generic bad rows bad for both. Then the task-detecting `data validate` without a config.
"""

from __future__ import annotations

import json

import pytest

from tiny import tiny_tokenizer
from tiny_tasks import TINY_TASKS
from tunesmith.cli.main import run
from tunesmith.config import validate_config
from tunesmith.data.prepare import prepare_data
from tunesmith.tasks import TASKS
from tunesmith.training.preflight import validate_for_config

GOOD = 4


def _fixture(path, name: str) -> tuple[set[int], set[int]]:
    """Write the file; (lines of the task's good rows, lines of the generic bad rows)."""
    tiny = TINY_TASKS[name]
    lines = [json.dumps(tiny.row(i)) for i in range(GOOD)]
    lines += [json.dumps(r) for r in tiny.other_rows]
    lines += [json.dumps(t.row(7)) for other, t in TINY_TASKS.items() if other != name]
    generic = ["{}", "7", '{"broken": ']
    path.write_text("\n".join(lines + generic) + "\n", encoding="utf-8")
    return set(range(1, GOOD + 1)), set(range(len(lines) + 1, len(lines) + len(generic) + 1))


def _config(name: str, data, model_dir, **data_options):
    return validate_config({
        "model": {"name_or_path": str(model_dir)},
        "data": {"train": [str(data)], "template": "chatml", "cutoff_len": 256, "on_bad_row": "skip",
                 "eval_ratio": 0.0, "cache": False, **data_options},
        "task": TINY_TASKS[name].task,
        "output": {"dir": str(data.parent / "run")},
    })


def _line(origin: str, path) -> int:
    return int(origin.removeprefix(f"{path}:").split()[0])


def _bad_for_training(config, path) -> set[str]:
    task = TASKS.get(config.task.name)
    report = prepare_data(config, tiny_tokenizer(), task).report
    listed = report["load"]["bad_rows"] + report["train"].get("skipped", [])
    return {entry.split(": ", 1)[0] for entry in listed}


@pytest.mark.parametrize("name", TASKS.names())
def test_validate_and_training_give_the_same_verdict_on_every_row(name, tmp_path, tiny_model_dir):
    if name not in TINY_TASKS:
        pytest.fail(f"task {name!r} has no tiny example: add one to TINY_TASKS in tests/tiny_tasks.py")
    path = tmp_path / "rows.jsonl"
    good, generic_bad = _fixture(path, name)
    config = _config(name, path, tiny_model_dir)
    trained = _bad_for_training(config, path)
    validated = {p.origin for p in validate_for_config(str(path), config).errors}
    assert validated == trained
    bad_lines = {_line(o, path) for o in trained}
    assert generic_bad <= bad_lines and not good & bad_lines, sorted(bad_lines)


def test_header_less_tsv_with_data_columns_agrees_too(tmp_path, tiny_model_dir):
    path = tmp_path / "plain.tsv"
    path.write_text("a fine film\tpositive\n\tnegative\na dull film\tnegative\nno label\t\n", encoding="utf-8")
    config = _config("classification", path, tiny_model_dir, columns=["sentence", "label"])
    trained = _bad_for_training(config, path)
    assert trained == {f"{path}:2", f"{path}:4"}
    assert {p.origin for p in validate_for_config(str(path), config).errors} == trained


DETECTED = [
    ("hh.jsonl", [json.dumps(TINY_TASKS["dpo"].other_rows[0])] * 3, "dpo"),
    ("kto.jsonl", [json.dumps(TINY_TASKS["kto"].other_rows[4])] * 3, "kto"),
    ("reviews.csv", ["text,label", "a fine film,positive", "a dull film,negative"], "classification"),
    ("summaries.jsonl", [json.dumps({"source": "a long text", "target": "short"})] * 2, "seq2seq"),
    ("corpus.txt", ["The first line of a book.", "", "The second one."], "pretrain"),
    ("chats.jsonl", [json.dumps(TINY_TASKS["sft"].other_rows[0])] * 2, "sft"),
]


@pytest.mark.parametrize("file, lines, task", DETECTED, ids=[d[0] for d in DETECTED])
def test_validate_without_a_config_reads_rows_as_the_detected_task(file, lines, task, tmp_path, capsys):
    path = tmp_path / file
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = tmp_path / "report.json"
    with pytest.raises(SystemExit) as done:
        run(["data", "validate", str(path), "--report", str(report)])
        raise SystemExit(0)
    result = json.loads(report.read_text())
    assert done.value.code == 0, capsys.readouterr()
    assert result["task"] == task and result["errors"] == 0 and result["valid_rows"] == len([x for x in lines if x]) - (
        file.endswith(".csv"))


def test_validate_names_every_layout_of_the_task(tmp_path, capsys):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"question": "2 + 3?", "answer": "5"}) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        run(["data", "validate", str(path), "--task", "kto"])
    assert done.value.code == 1
    captured = capsys.readouterr()
    out = (captured.out + captured.err).replace("\n", "")
    for layout in ("llamafactory-kto", "kto:", "hh-preference", "sharegpt-preference", "openai-preference"):
        assert layout in out
