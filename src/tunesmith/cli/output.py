"""Where the CLI writes: listings and results to stdout (pipes, `| grep`, `--json` for scripts);
progress bars and messages stay on stderr (tunesmith.utils.progress.console)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tunesmith.errors import TunesmithError

stdout = Console()  # resolves sys.stdout at print time, so redirection and test capture work

JSON = typer.Option(False, "--json", help="Print JSON (for scripts) instead of a table.")


def print_json(value) -> None:
    typer.echo(json.dumps(value, indent=1, ensure_ascii=False, default=str))


def listing(title: str, rows: list[dict], as_json: bool) -> None:
    """Rows of {column: value}: a table on stdout, or with --json the rows themselves."""
    if as_json:
        print_json(rows)
        return
    table = Table(title=title)
    for column in rows[0] if rows else []:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if v is None else escape(str(v)) for v in row.values()])
    stdout.print(table)


def check_output(path: Path | None, option: str, *, folder: bool = False) -> None:
    """Refuse, before any work is done, an output that cannot be written: a folder where a file
    goes (or a file where a folder goes), a path below a file, a read-only place. `-`, device
    files and pipes are left to the writer (tunesmith.utils.io writes those in place)."""
    if path is None or str(path) == "-":
        return
    path = Path(path)
    if path.exists():
        if path.is_dir() != folder:
            raise TunesmithError(f"{option} {path}: is a {'file' if folder else 'folder'}; "
                                 f"give a {'folder' if folder else 'file'} path")
        if not (path.is_file() or path.is_dir()):  # a device or pipe is written in place
            where = path
        else:
            where = path if folder else path.parent
    else:
        where = next(p for p in path.absolute().parents if p.exists())
        if not where.is_dir():
            raise TunesmithError(f"{option} {path}: {where} is a file, not a folder; choose another path")
    if not os.access(where, os.W_OK):
        raise TunesmithError(f"{option} {path}: {where} is not writable (read-only disk or no permission); "
                             "choose another path")
