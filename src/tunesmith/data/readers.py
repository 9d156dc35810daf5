"""Read json, jsonl, csv, tsv and parquet files into rows that remember their line."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tunesmith.errors import DataError

SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet")


@dataclass
class RawRow:
    origin: str  # "file:line", shown in every message about this row
    data: object  # a dict for well-formed rows; anything else is reported by the format


def read_rows(path: str | Path, columns: list[str] | None = None) -> Iterator[RawRow]:
    """Yield every row of a data file; malformed JSON is a DataError with file:line.
    `columns` names the fields of a csv/tsv file that has no header row."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    readers = {".json": _json, ".jsonl": _jsonl, ".csv": _csv, ".tsv": _tsv, ".parquet": _parquet}
    if suffix not in readers:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}")
    if columns and suffix in (".csv", ".tsv"):
        yield from _delimited(path, "," if suffix == ".csv" else "\t", columns)
        return
    yield from readers[suffix](path)


def _jsonl(path: Path) -> Iterator[RawRow]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield RawRow(f"{path}:{number}", json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path}:{number}: malformed JSON ({err.msg} at column {err.colno})"
                ) from None


def _json(path: Path) -> Iterator[RawRow]:
    """A JSON array of rows (or one object); each row's origin is the line it starts on."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    if text.startswith("{", pos):
        yield RawRow(f"{path}:{text.count(chr(10), 0, pos) + 1}", _decode(decoder, text, pos, path)[0])
        return
    if not text.startswith("[", pos):
        raise DataError(f"{path}:1: expected a JSON array of rows; for one row per line use .jsonl")
    pos = _skip_space(text, pos + 1)
    line, counted = 1, 0
    while pos < len(text) and text[pos] != "]":
        line += text.count("\n", counted, pos)
        counted = pos
        value, pos = _decode(decoder, text, pos, path)
        yield RawRow(f"{path}:{line}", value)
        pos = _skip_space(text, pos)
        if text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
        elif not text.startswith("]", pos):
            lineno = text.count("\n", 0, pos) + 1
            raise DataError(f"{path}:{lineno}: malformed JSON (expected ',' or ']' between rows)")


def _decode(decoder: json.JSONDecoder, text: str, pos: int, path: Path):
    try:
        return decoder.raw_decode(text, pos)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: malformed JSON ({err.msg} at column {err.colno})") from None


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _delimited(path: Path, delimiter: str, columns: list[str] | None = None) -> Iterator[RawRow]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, fieldnames=columns, delimiter=delimiter)
        for row in reader:
            yield RawRow(f"{path}:{reader.line_num}", {k: v for k, v in row.items() if k is not None})


def _csv(path: Path) -> Iterator[RawRow]:
    return _delimited(path, ",")


def _tsv(path: Path) -> Iterator[RawRow]:
    return _delimited(path, "\t")


def _parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq  # a dependency of `datasets`

    for number, row in enumerate(pq.read_table(path).to_pylist(), 1):
        yield RawRow(f"{path}:row {number}", row)
