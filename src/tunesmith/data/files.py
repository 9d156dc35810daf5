"""Rows in and out of files for the `tunesmith data` commands: any input the readers know
(plus SQLite tables and queries), outputs written atomically as jsonl, json or csv."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

from tunesmith.data.load import LoadReport, read_raw_rows
from tunesmith.data.records import ORIGIN
from tunesmith.errors import DataError
from tunesmith.utils.io import is_stream, open_output

OUTPUT_SUFFIXES = (".jsonl", ".json", ".csv")
INTERNAL_KEYS = (ORIGIN, "_split", "_source")


def read_input(paths: list[str], on_bad_row: str = "error", report: LoadReport | None = None,
               columns: list[str] | None = None) -> list[dict]:
    """Rows of data files, or of a SQLite database: `db.sqlite::table` or `db.sqlite::SELECT ...`.
    `columns` names the fields of header-less csv/tsv files."""
    rows: list[dict] = []
    for path in paths:
        if "::" in path:
            rows += read_sql(*path.split("::", 1))
        else:
            rows += read_raw_rows([path], on_bad_row, report, columns)
    if not rows:
        raise DataError(f"{', '.join(paths)}: no rows (empty file?)")
    return rows


def read_sql(database: str, table_or_query: str) -> list[dict]:
    """A table or a SELECT through SQLAlchemy; origins are "db::table:row N"."""
    import sqlalchemy as sa

    query = table_or_query.strip()
    is_query = query.lower().startswith(("select", "with"))
    engine = sa.create_engine(_read_only_url(database))
    try:
        with engine.connect() as conn:
            if conn.dialect.name in ("postgresql", "mysql", "mariadb"):  # SQLite: read-only by its URL
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")  # the transaction is never committed
            if is_query:
                result = conn.execute(sa.text(query))
            else:
                table = sa.Table(query, sa.MetaData(), autoload_with=conn)
                result = conn.execute(sa.select(table))
            rows = [dict(r._mapping) for r in result]
    except sa.exc.NoSuchTableError:
        raise DataError(f"{database}: no table {query!r}") from None
    except sa.exc.SQLAlchemyError as err:
        raise DataError(f"{database}: {err.__class__.__name__}: {err.orig if hasattr(err, 'orig') else err}") from None
    finally:
        engine.dispose()
    name = "query" if is_query else query
    return [{**{k: _plain(v) for k, v in r.items()}, ORIGIN: f"{database}::{name}:row {i}"}
            for i, r in enumerate(rows, 1)]


def _read_only_url(database: str):
    """A URL that cannot change the database: SQLite files open with mode=ro, so even
    `WITH ... DELETE ... RETURNING` fails (other servers get a read-only transaction)."""
    if "://" in database and not database.startswith("sqlite:///"):
        return database
    path = Path(database.removeprefix("sqlite:///"))
    if not path.is_file():
        raise DataError(f"database not found: {database}" + (" (it is a directory)" if path.is_dir() else ""))
    import sqlalchemy as sa  # a URL object: its string form would undo the percent-quoting

    return sa.engine.URL.create("sqlite", database=f"file:{quote(str(path.resolve()))}",
                                query={"mode": "ro", "uri": "true"})


def _plain(value):
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def refuse_overwriting_inputs(inputs: list[str], outputs: list[str | Path | None]) -> None:
    """A DataError when an output is one of the inputs, however either is spelled (relative,
    symlinked, hard-linked): tunesmith never rewrites a file it reads."""
    sources = [_input_file(p) for p in inputs]
    for output in outputs:
        if output is None or is_stream(output) or not Path(output).exists():
            continue
        for source in sources:
            if source is not None and source.exists() and os.path.samefile(source, output):
                raise DataError(f"output {output} is the input {source}; tunesmith never rewrites its inputs. "
                                "Choose another output path")


def _input_file(spec: str) -> Path | None:
    """The file an input spec reads: the file itself, or the SQLite database of `db::table`."""
    database = spec.split("::", 1)[0]
    if "://" in database:
        return Path(database.removeprefix("sqlite:///")) if database.startswith("sqlite:///") else None
    return Path(database)


def clean_row(row: dict, keep_origin: bool = False) -> dict:
    return {k: v for k, v in row.items() if k not in INTERNAL_KEYS or (keep_origin and k == ORIGIN)}


def write_rows(path: str | Path, rows: Iterable[dict], keep_origin: bool = False) -> int:
    """Write rows atomically in the format the suffix names; returns the count."""
    suffix = ".jsonl" if str(path) == "-" else Path(path).suffix.lower()  # a stream is jsonl
    if suffix not in OUTPUT_SUFFIXES and not is_stream(path):
        raise DataError(f"{path}: write .jsonl, .json or .csv (got {suffix or 'no suffix'})")
    n = 0
    with open_output(path) as f:
        if suffix == ".csv":
            rows = [clean_row(r, keep_origin) for r in rows]
            columns = list(dict.fromkeys(k for r in rows for k in r))
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            for r in rows:
                writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
                                 for k, v in r.items()})
                n += 1
        elif suffix == ".json":
            f.write("[\n")
            for r in rows:
                f.write((",\n" if n else "") + json.dumps(clean_row(r, keep_origin), ensure_ascii=False))
                n += 1
            f.write("\n]\n")
        else:
            for r in rows:
                f.write(json.dumps(clean_row(r, keep_origin), ensure_ascii=False) + "\n")
                n += 1
    return n

