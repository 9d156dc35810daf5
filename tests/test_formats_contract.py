"""One contract over every registered row format: adding a format to FORMATS adds it here.

Each format registers an example row. For every format: auto-detection picks it for its own
example (or, for a forced-only format such as `rows`, it recognises no row at all); the example
parses into a record whose origin is its file and line, the same from .jsonl and .json; and a
format that `tunesmith data convert` writes survives a round trip: the example converted to the
format itself, and through the OpenAI layout and back, reads as the same record.
Preference formats (kind "preference") and KTO formats (kind "kto") are detected among their
own kind and read by their tasks from plain rows; preference formats round-trip as the same
checked pair.
"""

from __future__ import annotations

import json

import pytest

from tunesmith.cli.main import run
from tunesmith.data.convert import TARGETS
from tunesmith.data.formats import FORMATS, detect_format, read_as
from tunesmith.data.load import load_records
from tunesmith.data.preference import preference_record
from tunesmith.errors import DataError

ORIGIN = "_origin"


@pytest.fixture(params=FORMATS.names())
def spec(request):
    spec = FORMATS.get(request.param)
    assert spec.example is not None, f"format {spec.name!r} registers no example row (register_format(example=...))"
    return spec


def _copy(example):
    """A fresh copy of an example row (an object, or a bare list for list formats)."""
    return json.loads(json.dumps(example))


def _write(path, rows: list[dict]):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _records(path, fmt: str = "auto") -> list[dict]:
    records, _ = load_records([str(path)], fmt)
    return [{k: v for k, v in r.items() if k != ORIGIN} for r in records]


def _convert(source, to: str, out, fmt: str = "auto") -> None:
    with pytest.raises(SystemExit) as done:
        run(["data", "convert", str(source), "--to", to, "-o", str(out), "--from", fmt])
        raise SystemExit(0)
    assert done.value.code == 0, f"data convert --to {to} failed"


def test_detection_picks_the_format_for_its_own_example(spec):
    others = [s.example for s in FORMATS if s.name != spec.name and s.example is not None and s.kind == spec.kind]
    if spec.detect(spec.example):
        assert detect_format(spec.example, kind=spec.kind).name == spec.name
        assert not any(spec.detect(row) and detect_format(row, kind=spec.kind) is spec for row in others)
    else:  # forced only (data.format or a task's data_format): it must claim no row at all
        assert not any(spec.detect(row) for row in others), f"{spec.name} detects other formats' rows"


def test_the_example_parses_with_its_origin(spec, tmp_path):
    path = _write(tmp_path / "rows.jsonl", [spec.example, spec.example])
    if spec.kind != "record":  # preference and KTO tasks read plain rows, then each row's pair or reply
        records, _ = load_records([str(path)], "rows")
        assert [r[ORIGIN] for r in records] == [f"{path}:1", f"{path}:2"]
        assert all(read_as(r, spec.kind) == spec.to_record(_copy(spec.example)) for r in records)
        if spec.kind == "preference":
            assert all(preference_record(r) == spec.to_record(_copy(spec.example)) for r in records)
        return
    detected = spec.detect(spec.example)
    records, report = load_records([str(path)], "auto" if detected else spec.name)
    assert [r[ORIGIN] for r in records] == [f"{path}:1", f"{path}:2"]
    if detected:  # the report names the format it detected
        assert report.formats[str(path)] == spec.name
    expected = {k: v for k, v in spec.to_record(_copy(spec.example)).items() if k != ORIGIN}
    assert all({k: v for k, v in r.items() if k != ORIGIN} == expected for r in records)
    array = tmp_path / "rows.json"
    array.write_text(json.dumps([spec.example]), encoding="utf-8")
    assert _records(array, spec.name) == [expected]


def test_parsing_leaves_the_row_unchanged(spec):
    row = json.loads(json.dumps(spec.example))
    spec.to_record(row)
    assert row == spec.example


def test_round_trip_through_data_convert(spec, tmp_path):
    if spec.name not in TARGETS:
        source = _write(tmp_path / "in.jsonl", [spec.example])
        with pytest.raises(SystemExit) as done:
            run(["data", "convert", str(source), "--to", spec.name, "-o", str(tmp_path / "out.jsonl")])
        assert done.value.code == 2, "an unknown target is one clear error"
        with pytest.raises(DataError, match="unknown target format"):
            from tunesmith.data.convert import convert_rows

            convert_rows([spec.example], spec.name)
        pytest.skip(f"{spec.name} is not a `data convert` target")
    fmt = "auto" if spec.detect(spec.example) else spec.name
    source = _write(tmp_path / "in.jsonl", [spec.example])
    if spec.kind == "preference":  # itself, and through the TRL layout and back: the same pair
        _convert(source, spec.name, tmp_path / "same.jsonl")
        _convert(tmp_path / "same.jsonl", "preference", tmp_path / "trl.jsonl")
        _convert(tmp_path / "trl.jsonl", spec.name, tmp_path / "back.jsonl")
        pair = spec.to_record(_copy(spec.example))
        for out in ("same", "trl", "back"):
            assert [preference_record(r) for r in _records(tmp_path / f"{out}.jsonl", "rows")] == [pair]
        return
    original = _records(source, fmt)
    _convert(source, spec.name, tmp_path / "same.jsonl", fmt)
    assert _records(tmp_path / "same.jsonl", spec.name) == original
    if "messages" in original[0]:  # chat formats: through the OpenAI layout and back
        _convert(source, "openai", tmp_path / "openai.jsonl", fmt)
        _convert(tmp_path / "openai.jsonl", spec.name, tmp_path / "back.jsonl")
        assert _records(tmp_path / "back.jsonl", spec.name) == original
