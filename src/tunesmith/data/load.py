"""Files -> canonical records, with every bad row reported by file and line."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.data.formats import FORMATS, FormatSpec, detect_format, layouts
from tunesmith.data.readers import RawRow, Unreadable, read_rows
from tunesmith.data.records import ORIGIN, LayoutError, RowError, origin
from tunesmith.errors import DataError


@dataclass
class BadRow:
    origin: str
    reason: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.reason}"


@dataclass
class LoadReport:
    rows_read: int = 0
    formats: dict[str, str] = field(default_factory=dict)  # file -> format name
    bad_rows: list[BadRow] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "formats": self.formats,
            "bad_rows": [str(b) for b in self.bad_rows],
        }


def load_records(
    paths: list[str], fmt: str = "auto", on_bad_row: str = "error", report: LoadReport | None = None,
    columns: list[str] | None = None,
) -> tuple[list[dict], LoadReport]:
    """Read and convert every file; a bad row raises DataError (on_bad_row=error) or is reported.
    `columns` names the fields of header-less csv/tsv files."""
    report = report or LoadReport()
    records: list[dict] = []
    for path in paths:
        records += _load_file(Path(path), fmt, on_bad_row, report, columns)
    return records, report


def load_shaped_like_run(path: str, data_config) -> list[dict]:
    """New rows as a run's training rows were made: its row-shaping pipeline steps (`template`)
    apply, its filters (dedup, balance, ...) do not; so predict takes the same raw layout."""
    from tunesmith.data.steps import STEPS, run_pipeline

    shaping = [s for s in data_config.pipeline if STEPS.get(s.step).reshapes_rows]
    if not shaping:
        return load_records([path], "auto", data_config.on_bad_row, columns=data_config.columns)[0]
    report = LoadReport()
    rows, _ = run_pipeline(read_raw_rows([path], data_config.on_bad_row, report, data_config.columns), shaping)
    return rows_to_records(rows, "auto", data_config.on_bad_row, report, path)


def _load_file(path: Path, fmt: str, on_bad_row: str, report: LoadReport, columns=None) -> list[dict]:
    errors = "report" if on_bad_row == "skip" else "raise"
    rows = ({**r.data, ORIGIN: r.origin} if isinstance(r.data, dict) else r for r in read_rows(path, errors, columns))
    return rows_to_records(rows, fmt, on_bad_row, report, str(path))


def read_raw_rows(paths: list[str], on_bad_row: str = "error", report: LoadReport | None = None,
                  columns: list[str] | None = None) -> list[dict]:
    """Every row of the files as the user wrote it (their own keys, labels, dates), plus
    `_origin`; data pipeline steps work on these before rows become canonical records.
    `columns` names the fields of header-less csv/tsv files."""
    report = report or LoadReport()
    rows: list[dict] = []
    for path in paths:
        for raw in read_rows(path, "report" if on_bad_row == "skip" else "raise", columns):
            if isinstance(raw.data, dict):
                rows.append({**raw.data, ORIGIN: raw.origin})
                continue
            report.rows_read += 1
            reason = raw.data.reason if isinstance(raw.data, Unreadable) else (
                f"expected a JSON object, got {type(raw.data).__name__}")
            _bad(report, on_bad_row, raw.origin, reason)
    return rows


def rows_to_records(rows, fmt: str, on_bad_row: str, report: LoadReport, name: str = "") -> list[dict]:
    """Raw rows (dicts with `_origin`, or RawRow for non-objects) -> canonical records."""
    spec: FormatSpec | None = None if fmt == "auto" else FORMATS.get(fmt)
    records = []
    for row in rows:
        report.rows_read += 1
        where, data = (row.origin, row.data) if isinstance(row, RawRow) else (row[ORIGIN], row)
        if isinstance(data, Unreadable):
            _bad(report, on_bad_row, where, data.reason)
            continue
        if spec is None:
            spec = detect_format(data)
            if spec is None:
                _bad(report, on_bad_row, where, undetected_reason(data))
                continue
            report.formats[name or where.rsplit(":", 1)[0]] = spec.name
        try:
            record = row_to_record(data, spec)
        except RowError as err:
            _bad(report, on_bad_row, where, f"{err} ({spec.name} format)")
            continue
        record[ORIGIN] = where
        records.append(record)
    return records


def row_to_record(data: object, spec: FormatSpec) -> dict:
    """One row read by `spec` (its `_origin` left out); RowError saying why it does not fit."""
    if not isinstance(data, spec.accepts):
        wanted = "an array of messages" if spec.accepts is list else "a JSON object"
        raise RowError(f"expected {wanted}, got {type(data).__name__}")
    return spec.to_record({k: v for k, v in data.items() if k != ORIGIN} if isinstance(data, dict) else data)


def undetected_reason(row: object) -> str:
    """Why a row fits no format, with every layout auto-detection knows."""
    keys = ", ".join(sorted(k for k in row if k != ORIGIN)) if isinstance(row, dict) else type(row).__name__
    return (f"no known format matches this row (keys: {keys}); accepted layouts: {layouts('record')}; "
            f"or set data.format to one of {', '.join(s.name for s in FORMATS if s.kind == 'record')}")


def task_records(records: list[dict], task, task_config, on_bad_row: str, report: LoadReport) -> list[dict]:
    """Canonical records as `task` learns from them: expanded (a SQuAD file row holds many questions)
    and passed through the task's own row check (columns, labels, pairs). Training and `data validate`
    both call this, so a row is bad for one exactly when it is bad for the other."""
    if task is None:
        return records
    if task.expand_records:
        records = task.expand_records(records)
    if task.check_row is None:
        return records
    kept = []
    for record in records:
        try:
            task.check_row(record, task_config)
        except RowError as err:
            accepted = task.layouts(task_config) if task.layouts and isinstance(err, LayoutError) else ""
            _bad(report, on_bad_row, origin(record), f"{err}" + (f"; task {task.name} reads {accepted}"
                                                                 if accepted else ""))
            continue
        kept.append(record)
    return kept


def _bad(report: LoadReport, on_bad_row: str, where: str, reason: str) -> None:
    report.bad_rows.append(BadRow(where, reason))
    if on_bad_row == "error":
        raise DataError(f"{where}: {reason}. Fix the row, or set data.on_bad_row=skip to drop bad rows")


def split_eval(records: list[dict], ratio: float, seed: int, by: str | None = None) -> tuple[list[dict], list[dict]]:
    """Hold out `ratio` of the rows (at least one) for evaluation, reproducibly; with `by`, that
    share of each value of the field `by` (a stratified split)."""
    if ratio <= 0 or len(records) < 2:
        return records, []
    if by:
        held = _stratified(records, ratio, seed, by)
        train = [r for i, r in enumerate(records) if i not in held]
        return train, [r for i, r in enumerate(records) if i in held]
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(records) * ratio))
    held = set(order[:n_eval])
    train = [r for i, r in enumerate(records) if i not in held]
    return train, [r for i, r in enumerate(records) if i in held]


def _stratified(records: list[dict], ratio: float, seed: int, by: str) -> set[int]:
    groups: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        groups.setdefault(str(record.get(by)), []).append(i)
    rng, held = random.Random(seed), set()
    for key in sorted(groups):
        members = groups[key]
        rng.shuffle(members)
        held.update(members[: round(len(members) * ratio)])
    return held or {0}
