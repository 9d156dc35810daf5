"""Shared by tasks that read their own columns: bad rows are reported with file:line and counted.

`data.on_bad_row` decides: `error` stops at the first bad row with a message naming it;
`skip` drops it, lists it in data_report.json and says how many were skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunesmith.data.records import LayoutError, origin
from tunesmith.data.tokenize import TokenizeReport
from tunesmith.errors import DataError
from tunesmith.utils.progress import say


@dataclass
class RowsReport(TokenizeReport):
    skipped: list[str] = field(default_factory=list)  # "file:line: reason" of each dropped row

    def as_dict(self) -> dict:
        return {**super().as_dict(), "skipped_rows": len(self.skipped), "skipped": self.skipped[:50]}

    def count(self, ids: list[int], cutoff: int | None = None, where: str = "") -> None:
        """Count one kept example of `ids` (and note it when it hit the cutoff)."""
        self.rows += 1
        self.tokens += len(ids)
        if cutoff is not None and len(ids) >= cutoff:
            self.truncated.append(where)


def bad_row(report: RowsReport, config, record: dict, reason: str) -> None:
    """Stop with a clear error, or note the row as skipped, per data.on_bad_row."""
    where = origin(record)
    if config.data.on_bad_row == "error":
        raise DataError(f"{where}: {reason}. Fix the row, or set data.on_bad_row=skip to drop bad rows")
    report.skipped.append(f"{where}: {reason}")


def say_skipped(report: RowsReport, what: str) -> None:
    if report.skipped:
        say(f"[yellow]skipped {len(report.skipped)} bad {what} row(s)[/]; first: {report.skipped[0]} "
            "(all are listed in data_report.json)")


def columns_layout(*names: str | None) -> str:
    """What rows of a column-reading task look like, for messages about a row that is not so."""
    named = " and ".join(repr(n) for n in names if n)
    return (f"rows with {named} columns: json/jsonl objects, parquet, csv/tsv with a header row, "
            "or header-less csv/tsv with data.columns, or a .txt file (one value per line) with data.columns")


def column(record: dict, name: str, task: str, key: str) -> object:
    """The value of column `name`; a missing column names the config key to change, an empty
    value (the column is right, this row has nothing in it) says so."""
    if name not in record:
        present = ", ".join(k for k in record if k != "_origin")
        raise ColumnError(f"column {name!r} is missing (row has: {present}); set task.{key} to the right column "
                          f"for task {task}")
    if record[name] is None or (isinstance(record[name], str) and not record[name].strip()):
        raise ColumnError(f"column {name!r} is empty (empty text); fill the row or remove it")
    return record[name]


class ColumnError(LayoutError):
    """A row without a needed column; the message names the column and the config key."""
