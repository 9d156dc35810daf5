"""Every format parses its real file in ../shared; bad rows are reported with their line."""

import json

import pytest

from conftest import shared
from tunesmith.data.load import load_records
from tunesmith.data.readers import read_rows
from tunesmith.errors import DataError


def test_alpaca_en_demo_parses_every_row():
    path = shared("llamafactory_alpaca_demo", "alpaca_en_demo.json")
    records, report = load_records([str(path)])
    assert len(records) == 999 and report.formats[str(path)] == "alpaca"
    first = records[0]
    assert first["messages"][-1]["role"] == "assistant"
    assert first["_origin"] == f"{path}:2"  # the first object starts on line 2 of the array


def test_huanhuan_chinese_rows_keep_their_text():
    path = shared("huanhuan", "huanhuan-100.json")
    records, _ = load_records([str(path)])
    assert len(records) == 100
    assert records[0]["messages"][0]["content"] == "娘娘。"


def test_openai_toy_chat_reports_malformed_row_with_line():
    path = shared("openai_chat_messages", "toy_chat_fine_tuning.jsonl")
    records, report = load_records([str(path)], on_bad_row="skip")
    assert len(records) == 4
    assert [b.origin for b in report.bad_rows] == [f"{path}:4"]
    assert "not a user turn" in report.bad_rows[0].reason
    with pytest.raises(DataError, match=r"toy_chat_fine_tuning.jsonl:4: .*on_bad_row=skip"):
        load_records([str(path)])


def test_sharegpt_and_tool_rows():
    path = shared("llamafactory_messages_demo", "glaive_toolcall_en_demo.json")
    records, report = load_records([str(path)], on_bad_row="skip")
    assert report.formats[str(path)] == "sharegpt"
    assert len(records) + len(report.bad_rows) == report.rows_read
    assert any("tools" in r for r in records)
    assert any(m["role"] == "tool" for r in records for m in r["messages"])


def test_openai_rows_with_tool_calls():
    path = shared("openai_chat_messages", "drone_training.jsonl")
    records, report = load_records([str(path)], on_bad_row="skip")
    assert len(records) == 103 and not report.bad_rows
    assert all("tools" in r for r in records)


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "broken"\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: malformed JSON"):
        load_records([str(path)])
    array = tmp_path / "bad.json"
    array.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "a" "output": "b"}\n]')
    with pytest.raises(DataError, match=r"bad.json:3: malformed JSON"):
        load_records([str(array)])


def test_wrong_shape_row_is_named(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"instruction": "hi", "output": "hello"}, {"instruction": "hi", "output": 5}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"rows.jsonl:2: field 'output' is a int, not text"):
        load_records([str(path)])


def test_unknown_format_row_and_name(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\n')
    with pytest.raises(DataError, match="no known format matches this row .keys: answer, question"):
        load_records([str(path)])
    from tunesmith.errors import TunesmithError

    with pytest.raises(TunesmithError, match="unknown data format 'alpacca'. Did you mean 'alpaca'"):
        load_records([str(path)], fmt="alpacca")


def test_csv_tsv_parquet_rows_keep_line_numbers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.csv").write_text('instruction,output\n"multi\nline",x\nb,y\n')
    rows = list(read_rows(tmp_path / "a.csv"))
    assert [r.origin.rsplit(":", 1)[1] for r in rows] == ["2", "4"]
    (tmp_path / "a.tsv").write_text("text\nhello\n")
    assert list(read_rows(tmp_path / "a.tsv"))[0].data == {"text": "hello"}
    pq.write_table(pa.table({"text": ["a", "b"]}), tmp_path / "a.parquet")
    records, report = load_records([str(tmp_path / "a.parquet"), str(tmp_path / "a.tsv")])
    assert [r["text"] for r in records] == ["a", "b", "hello"]
    assert report.formats[str(tmp_path / "a.parquet")] == "text"


def test_missing_file_and_unsupported_type(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        load_records([str(tmp_path / "nope.jsonl")])
    (tmp_path / "x.xml").write_text("<a/>")
    with pytest.raises(DataError, match="unsupported file type '.xml'"):
        load_records([str(tmp_path / "x.xml")])
