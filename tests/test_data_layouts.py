"""Real-world layouts load as training reads them: LLaMA-Factory KTO files, bare message lists,
plain .txt, header-less csv/tsv (data.columns in validate, split and the pipeline), HH transcripts
converted to TRL pairs."""

from __future__ import annotations

import json

import pytest

from tiny import tiny_tokenizer
from tunesmith.cli.main import run
from tunesmith.config import validate_config
from tunesmith.data.load import load_records
from tunesmith.data.prepare import prepare_data
from tunesmith.errors import DataError
from tunesmith.tasks import TASKS

USER, REPLY = {"role": "user", "content": "2 + 3?"}, {"role": "assistant", "content": "5"}


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _prepare(tmp_path, tiny_model_dir, data: dict, task: dict):
    config = validate_config({
        "model": {"name_or_path": str(tiny_model_dir)},
        "data": {"template": "chatml", "cutoff_len": 128, "eval_ratio": 0.0, "cache": False, **data},
        "task": task, "output": {"dir": str(tmp_path / "run")},
    })
    return prepare_data(config, tiny_tokenizer(), TASKS.get(task["name"]))


def test_llamafactory_kto_rows_train_as_judged_replies(tmp_path, tiny_model_dir):
    rows = [{"messages": [USER, {"role": "assistant", "content": answer}], "label": answer == "5"}
            for answer in ("5", "6", "5", "seven")]
    rows.append({"prompt": "2 + 3?", "chosen": "5", "rejected": "6"})  # pairs mix in, split in two
    prepared = _prepare(tmp_path, tiny_model_dir, {"train": [str(_jsonl(tmp_path / "kto.jsonl", rows))]},
                        {"name": "kto"})
    assert [f["label"] for f in prepared.train] == [True, False, True, False, True, False]
    assert [f["completion"].startswith(("5", "6", "seven")) for f in prepared.train] == [True] * 6
    assert prepared.report["train"]["tokens"] > 0  # unpaired rows count their tokens too


def test_a_kto_label_that_is_not_true_or_false_is_a_bad_row_by_line(tmp_path, tiny_model_dir):
    rows = [{"messages": [USER, REPLY], "label": True}, {"messages": [USER, REPLY], "label": "yes"}]
    path = _jsonl(tmp_path / "kto.jsonl", rows)
    with pytest.raises(DataError, match=r"kto.jsonl:2: a KTO row needs label: true or false \(got 'yes'\)"):
        _prepare(tmp_path, tiny_model_dir, {"train": [str(path)]}, {"name": "kto"})


def test_jsonl_of_bare_message_lists_reads_as_chat(tmp_path):
    path = _jsonl(tmp_path / "chats.jsonl", [[USER, REPLY], [{"role": "system", "content": "be terse"}, USER, REPLY]])
    records, report = load_records([str(path)])
    assert report.formats[str(path)] == "openai-list"
    assert [r["messages"] for r in records] == [[USER, REPLY], [{"role": "system", "content": "be terse"}, USER, REPLY]]
    assert [r["_origin"] for r in records] == [f"{path}:1", f"{path}:2"]
    _jsonl(path, [[USER, REPLY], [USER]])
    with pytest.raises(DataError, match=r"chats.jsonl:2: the conversation has no assistant turn"):
        load_records([str(path)])


def test_plain_text_file_pretrains_one_line_per_text(tmp_path, tiny_model_dir):
    path = tmp_path / "book.txt"
    path.write_text("The first line of a book.\n\nThe second line, after a blank one.\n", encoding="utf-8")
    records, _ = load_records([str(path)])
    assert [(r["text"], r["_origin"]) for r in records] == [("The first line of a book.", f"{path}:1"),
                                                           ("The second line, after a blank one.", f"{path}:3")]
    prepared = _prepare(tmp_path, tiny_model_dir, {"train": [str(path)]}, {"name": "pretrain"})
    assert len(prepared.train) == 2


def test_a_txt_file_of_one_value_per_line_takes_its_column_name(tmp_path):
    path = tmp_path / "sentences.txt"
    path.write_text("a fine film\na dull film\n", encoding="utf-8")
    records, _ = load_records([str(path)], "rows", columns=["sentence"])
    assert [r["sentence"] for r in records] == ["a fine film", "a dull film"]
    with pytest.raises(DataError, match="one column name"):
        load_records([str(path)], "rows", columns=["a", "b"])


def test_header_less_tsv_in_the_pipeline_and_split(tmp_path, tiny_model_dir, capsys):
    path = tmp_path / "plain.tsv"
    path.write_text("".join(f"film number {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(6))
                    + "film number 0\tneg\n", encoding="utf-8")
    data = {"train": [str(path)], "columns": ["sentence", "label"], "pipeline": [{"step": "dedup", "method": "exact"}]}
    prepared = _prepare(tmp_path, tiny_model_dir, data, {"name": "classification", "text_column": "sentence"})
    assert len(prepared.train) == 6 and prepared.report["pipeline"][0]["rows_out"] == 6
    with pytest.raises(SystemExit) as done:
        run(["data", "split", str(path), "-o", str(tmp_path / "parts"), "--ratios", "1:1", "--columns",
             "sentence,label", "--stratify", "label"])
        raise SystemExit(0)
    assert done.value.code == 0
    parts = [json.loads(line) for name in ("train", "eval")
             for line in (tmp_path / "parts" / f"{name}.jsonl").read_text().splitlines()]
    assert len(parts) == 7 and all(set(r) == {"sentence", "label"} for r in parts)


def test_hh_transcripts_convert_to_trl_pairs(tmp_path, capsys):
    hh = {"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2 + 3?\n\nAssistant: 5",
          "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2 + 3?\n\nAssistant: 6"}
    source, out = _jsonl(tmp_path / "hh.jsonl", [hh]), tmp_path / "trl.jsonl"
    with pytest.raises(SystemExit) as done:
        run(["data", "convert", str(source), "--to", "preference", "-o", str(out)])
        raise SystemExit(0)
    assert done.value.code == 0
    assert json.loads(out.read_text()) == {
        "prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                   {"role": "user", "content": "2 + 3?"}],
        "chosen": [{"role": "assistant", "content": "5"}], "rejected": [{"role": "assistant", "content": "6"}]}


def test_a_row_of_no_known_layout_lists_every_layout(tmp_path):
    path = _jsonl(tmp_path / "odd.jsonl", [{"question": "2 + 3?", "reply": "5"}])
    with pytest.raises(DataError) as err:
        load_records([str(path)])
    for layout in ("openai:", "openai-list:", "sharegpt:", "alpaca:", "text:"):
        assert layout in str(err.value)
