"""Where the CLI writes: listings and results to stdout (pipes, `| grep`, `--json` for scripts);
progress bars and messages stay on stderr (tunesmith.utils.progress.console)."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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
