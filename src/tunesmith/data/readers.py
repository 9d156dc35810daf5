"""Read json, jsonl, csv, tsv, parquet and plain text files into rows that remember their line."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tunesmith.errors import DataError

SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet", ".txt")
MAX_DEPTH = 100  # lists/objects inside each other; real rows nest a few levels, attacks thousands
BOM = "\ufeff"


@dataclass
class RawRow:
    origin: str  # "file:line", shown in every message about this row
    data: object  # a dict for well-formed rows; anything else is reported by the format


@dataclass
class Unreadable:
    """The data of a row that could not be parsed (only with read_rows(..., errors="report"))."""

    reason: str


def read_rows(path: str | Path, errors: str = "raise", columns: list[str] | None = None) -> Iterator[RawRow]:
    """Yield every row of a data file; a line that cannot be parsed is a DataError with
    file:line (errors="raise") or a RawRow whose data is `Unreadable` (errors="report"),
    so validators can list every bad line instead of stopping at the first.
    `columns` names the fields of a csv/tsv file that has no header row, and the one field of
    each line of a .txt file (default `text`)."""
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise DataError(f"{path} is a directory, not a data file; name the file(s) inside it")
        if path.exists():
            raise DataError(f"{path} is not a regular file (a device or pipe?); name a data file")
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    readers = {".json": _json, ".jsonl": _jsonl, ".csv": _csv, ".tsv": _tsv, ".parquet": _parquet, ".txt": _txt}
    if suffix not in readers:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}")
    if columns and suffix in (".csv", ".tsv"):
        rows = _delimited(path, "," if suffix == ".csv" else "\t", columns)
    elif suffix == ".txt":
        rows = _txt(path, columns)
    else:
        rows = readers[suffix](path)
    for row in rows:
        if isinstance(row.data, Unreadable) and errors == "raise":
            raise DataError(f"{row.origin}: {row.data.reason}")
        yield row


def _txt(path: Path, columns: list[str] | None = None) -> Iterator[RawRow]:
    """One row per non-blank line: {"text": line} (pretraining text, prompts, sentences), or the
    line under the one name `columns` gives."""
    if columns and len(columns) != 1:
        raise DataError(f"{path}: a .txt file has one value per line; give one column name, not {len(columns)}")
    name = columns[0] if columns else "text"
    for origin, line in _lines(path):
        if isinstance(line, Unreadable):
            yield RawRow(origin, line)
        elif line.strip():
            yield RawRow(origin, {name: line.rstrip("\r\n")})


def _lines(path: Path) -> Iterator[tuple[str, str | Unreadable]]:
    """(origin, text) of every line; bytes decoded line by line, so a non-UTF-8 line is reported
    with its number."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            origin = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield origin, Unreadable(f"not UTF-8 text (byte {err.start + 1}); re-encode the file as UTF-8")
                continue
            yield origin, line.removeprefix(BOM) if number == 1 else line  # a byte-order mark is not data


def _jsonl(path: Path) -> Iterator[RawRow]:
    for origin, line in _lines(path):
        if isinstance(line, Unreadable):
            yield RawRow(origin, line)
            continue
        if not line.strip():
            continue
        try:
            yield RawRow(origin, _shallow(json.loads(line)))
        except json.JSONDecodeError as err:
            yield RawRow(origin, Unreadable(f"malformed JSON ({err.msg} at column {err.colno})"))
        except (RecursionError, _TooDeep):
            yield RawRow(origin, Unreadable(TOO_DEEP))


def _json(path: Path) -> Iterator[RawRow]:
    """A JSON array of rows (or one object); each row's origin is the line it starts on."""
    text = _utf8_text(path)
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    if text.startswith("{", pos):
        yield RawRow(f"{path}:{text.count(chr(10), 0, pos) + 1}", _decode(decoder, text, pos, path)[0])
        return
    if not text.startswith("[", pos):
        raise DataError(f"{path}:1: expected a JSON array of rows; for one row per line use .jsonl")
    pos = _skip_space(text, pos + 1)
    line, counted, number = 1, 0, 0
    one_line = text.count("\n", pos, len(text.rstrip())) == 0  # minified: lines cannot tell rows apart
    while pos < len(text) and text[pos] != "]":
        line += text.count("\n", counted, pos)
        counted, number = pos, number + 1
        value, pos = _decode(decoder, text, pos, path)
        yield RawRow(f"{path}:row {number}" if one_line else f"{path}:{line}", value)
        pos = _skip_space(text, pos)
        if text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
        elif not text.startswith("]", pos):
            lineno = text.count("\n", 0, pos) + 1
            raise DataError(f"{path}:{lineno}: malformed JSON (expected ',' or ']' between rows)")


def _decode(decoder: json.JSONDecoder, text: str, pos: int, path: Path):
    try:
        value, end = decoder.raw_decode(text, pos)
        return _shallow(value), end
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: malformed JSON ({err.msg} at column {err.colno})") from None
    except (RecursionError, _TooDeep):
        raise DataError(f"{path}:{text.count(chr(10), 0, pos) + 1}: {TOO_DEEP}") from None


TOO_DEEP = f"JSON nested more than {MAX_DEPTH} levels deep; rows hold text, not deep structures"


class _TooDeep(Exception):
    pass


def _shallow(value):
    """`value`, or _TooDeep when lists/objects nest beyond MAX_DEPTH: later stages walk rows
    recursively and would otherwise fail with a RecursionError far from the file."""
    stack = [(value, 1)]
    while stack:  # iterative, so the check itself cannot overflow
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_DEPTH:
                    raise _TooDeep
                stack.append((child, depth + 1))
    return value


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _utf8_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8").removeprefix(BOM)  # a byte-order mark is not part of the data
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (binary file?); re-encode it as UTF-8") from None


def _delimited(path: Path, delimiter: str, columns: list[str] | None = None) -> Iterator[RawRow]:
    """Rows of a csv/tsv file; `columns` names the fields when the file has no header row."""
    text = _utf8_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""), fieldnames=columns, delimiter=delimiter)
    width = len(reader.fieldnames or [])
    start = 1 if columns else 2  # the line a row starts on; quoted fields may span several lines
    for row in _csv_rows(reader, path):
        origin = f"{path}:{start}"
        start = reader.line_num + 1
        cells = width + len(row.get(None) or []) - sum(v is None for k, v in row.items() if k is not None)
        if None in row or any(v is None for v in row.values()):
            yield RawRow(origin, Unreadable(f"ragged row: {cells} fields, the header has {width}"))
            continue
        yield RawRow(origin, dict(row))


def _csv_rows(reader: csv.DictReader, path: Path) -> Iterator[dict]:
    try:
        yield from reader
    except csv.Error as err:  # NUL bytes, a field over the csv module's size limit
        raise DataError(f"{path}:{reader.line_num}: unreadable csv ({err})") from None


def _csv(path: Path) -> Iterator[RawRow]:
    return _delimited(path, ",")


def _tsv(path: Path) -> Iterator[RawRow]:
    return _delimited(path, "\t")


def _parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow as pa  # a dependency of `datasets`
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: not a readable parquet file ({_first_line(err)}); "
                        "it may be truncated or another format under a .parquet name") from None
    for number, row in enumerate(rows, 1):
        yield RawRow(f"{path}:row {number}", row)


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
