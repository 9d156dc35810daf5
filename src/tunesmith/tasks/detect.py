"""Which task a data file is for, when no run config says: the task that reads most of its first
rows (each task's own reading: its row format and `check_row` with default options). A row counts
for a chat or text task only when its format reads every key of it, so `{text, label}` rows are
classification, not pretraining text, and `{messages, label}` rows are KTO, not chat. Ties go to
the task registered first, so a file of pairs is `dpo`. `data validate` without `--config` or
`--task` uses this."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from tunesmith.data.load import LoadReport, rows_to_records, task_records
from tunesmith.data.readers import RawRow, Unreadable, read_rows
from tunesmith.data.records import ORIGIN
from tunesmith.data.validate import ignored_keys
from tunesmith.tasks import TASKS, TaskSpec

SAMPLE = 50  # rows looked at; enough for a few bad rows not to decide


def detect_task(path: str | Path, fmt: str = "auto", columns: list[str] | None = None) -> TaskSpec | None:
    """The task that accepts most of the first rows of `path`, or None when no task accepts any."""
    rows = [r for r in islice(read_rows(path, errors="report", columns=columns), SAMPLE)
            if not isinstance(r.data, Unreadable)]
    best, most = None, 0
    for spec in TASKS:
        accepted = sum(reads(spec, row, fmt) for row in rows)
        if accepted > most:
            best, most = spec, accepted
    return best


def reads(spec: TaskSpec, row: RawRow, fmt: str = "auto") -> bool:
    """Would training with `spec` (default options) keep this row?"""
    report = LoadReport()
    data = {**row.data, ORIGIN: row.origin} if isinstance(row.data, dict) else row
    records = rows_to_records([data], fmt if fmt != "auto" else spec.data_format or "auto", "skip", report)
    if isinstance(row.data, dict) and any(ignored_keys(row.data, name) for name in report.formats.values()):
        return False  # the format would drop some of the row's fields: another task reads them
    return bool(task_records(records, spec, spec.config_class(), "skip", report))


def validate_for_task(path: str | Path, task: str | None = None, fmt: str = "auto", cutoff: int = 1024,
                      columns: list[str] | None = None):
    """`data validate` without a run config: rows checked as `task` (default options) reads them,
    the task detected from the file when not named; tokens estimated."""
    from tunesmith.data.validate import validate_file

    spec = TASKS.get(task) if task else detect_task(path, fmt, columns)
    return validate_file(path, fmt, cutoff=cutoff, columns=columns, task=spec,
                         task_config=spec.config_class() if spec else None)
