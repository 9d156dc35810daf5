"""`tunesmith data validate`: every bad row reported with its line; statistics; exit codes."""

import json

import pytest

from conftest import shared
from tunesmith.cli.main import run
from tunesmith.data.validate import plot_token_histogram, validate_file


def _lines(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _chat(user, answer):
    return json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]})


def test_toy_chat_reports_row4_and_row5_by_line():
    path = shared("openai_chat_messages", "toy_chat_fine_tuning.jsonl")
    result = validate_file(path)
    errors = {p.origin.rsplit(":", 1)[1]: p.reason for p in result.errors}
    assert set(errors) == {"4", "5"}
    assert "not a user turn" in errors["4"]
    assert "over the cutoff of 1024" in errors["5"]
    assert result.rows == 5 and result.valid_rows == 4


def test_every_malformed_line_is_listed_not_just_the_first(tmp_path):
    path = _lines(tmp_path, "bad.jsonl", [
        _chat("hi", "hello"),
        '{"messages": [',                                            # 2 unparsable
        json.dumps({"messages": [{"role": "user", "content": "q"}]}),  # 3 no assistant turn
        json.dumps({"messages": [{"role": "wizard", "content": "q"}, {"role": "assistant", "content": "a"}]}),
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]}),
        "not json at all",                                           # 6 unparsable
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                    "meta": 1}),                                     # 7 unknown key (warning)
        json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                                 {"role": "assistant", "content": "c"}]}),  # 8 order
    ])
    result = validate_file(path)
    by_line = {int(p.origin.rsplit(":", 1)[1]): p for p in result.problems}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8]
    assert "malformed JSON" in by_line[2].reason and "malformed JSON" in by_line[6].reason
    assert "no assistant turn" in by_line[3].reason
    assert "unknown role 'wizard'" in by_line[4].reason
    assert "empty" in by_line[5].reason and by_line[5].severity == "error"
    assert by_line[7].severity == "warning" and "meta" in by_line[7].reason
    assert "two user turns" in by_line[8].reason


def test_missing_and_empty_alpaca_fields(tmp_path):
    path = _lines(tmp_path, "a.jsonl", [
        json.dumps({"instruction": "x", "output": "y"}),
        json.dumps({"instruction": "", "output": "y"}),
        json.dumps({"instruction": "x", "output": None, "input": ""}),
    ])
    reasons = {p.origin.rsplit(":", 1)[1]: p.reason for p in validate_file(path).errors}
    assert reasons == {"2": "field 'instruction' is empty (alpaca format)",
                       "3": "field 'output' is missing (alpaca format)"}


def test_non_utf8_line_and_ragged_csv(tmp_path):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(_chat("a", "b").encode() + b"\n\xff\xfe\x00garbage\n" + _chat("c", "d").encode() + b"\n")
    problems = validate_file(path).problems
    assert [(p.origin.rsplit(":", 1)[1], "UTF-8" in p.reason) for p in problems] == [("2", True)]
    csv_path = _lines(tmp_path, "r.csv", ["instruction,output", "a,b", "c,d,e", "f"])
    reasons = [p.origin.rsplit(":", 1)[1] + " " + p.reason for p in validate_file(csv_path).errors]
    assert reasons == ["3 ragged row: 3 fields, the header has 2", "4 ragged row: 1 fields, the header has 2"]


def test_statistics_and_histogram(tmp_path):
    path = _lines(tmp_path, "ok.jsonl", [_chat("hello there", "x" * 400), _chat("hi", "yo")])
    result = validate_file(path, cutoff=50)
    stats = result.stats()
    assert stats["rows"] == 2 and stats["over_cutoff"] == 1
    assert stats["total_tokens"] == sum(result.token_counts) and stats["tokens_per_row"]["max"] > 100
    png = plot_token_histogram(result, tmp_path / "h.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_exit_codes_and_report(tmp_path, capsys):
    good = _lines(tmp_path, "good.jsonl", [_chat("a", "b")])
    bad = _lines(tmp_path, "bad.jsonl", [_chat("a", "b"), "{"])
    with pytest.raises(SystemExit) as ok:
        run(["data", "validate", str(good), "--histogram", str(tmp_path / "g.png")])
        raise SystemExit(0)
    assert ok.value.code == 0
    with pytest.raises(SystemExit) as failed:
        run(["data", "validate", str(bad), "--histogram", str(tmp_path / "b.png"), "--report", str(tmp_path / "r.json")])
    assert failed.value.code == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert [p["origin"].rsplit(":", 1)[1] for p in report["problems"]] == ["2"]
    with pytest.raises(SystemExit) as missing:
        run(["data", "validate", str(tmp_path / "nope.jsonl"), "--histogram", str(tmp_path / "n.png")])
    assert missing.value.code == 2


def test_preflight_estimate_with_config(tiny_config, tmp_path):
    from tunesmith.training.preflight import estimate_run, validate_for_config

    config = tiny_config(train={"max_steps": -1, "epochs": 2, "batch_size": 4})
    result = validate_for_config(config.data.train[0], config)
    assert not result.tokens_estimated and result.valid_rows == 12
    estimate = estimate_run(result, config, tokens_per_second=100.0)
    assert estimate["train_rows"] == 9 and estimate["steps_per_epoch"] == 3 and estimate["steps"] == 6
    assert estimate["estimated_seconds"] == round(estimate["trained_tokens"] / 100.0)


def test_bad_input_files_are_user_errors(tmp_path):
    from tunesmith.errors import DataError

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="no rows"):
        validate_file(empty)
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(DataError, match=r"b.json:\d+: not UTF-8"):
        validate_file(binary)
