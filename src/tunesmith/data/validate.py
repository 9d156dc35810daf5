"""Check a data file row by row and measure it: every problem with its line, then tokens.

Unlike loading for training, validation never stops at a bad row: unparsable lines,
rows that fit no format, conversations in the wrong order and rows over the cutoff are all
listed, so one run shows everything to fix. Rows stream through; memory holds only one
integer per row (its token count).

Each row goes through what training does to it: the readers (`data.columns` for header-less
csv/tsv), the row format (`row_to_record`) and, given a task, its own row check
(`load.task_records`: a classification row's text and label, a preference pair, a KTO row, a
QA example). So a row is an error here exactly when training would stop at it or drop it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tunesmith.data.formats import FORMATS, FormatSpec, detect_format
from tunesmith.data.load import LoadReport, row_to_record, task_records, undetected_reason
from tunesmith.data.readers import Unreadable, read_rows
from tunesmith.data.records import ORIGIN, RowError
from tunesmith.data.templates import get_template
from tunesmith.utils.progress import progress

KNOWN_KEYS = {  # top-level keys each format reads; anything else is probably a typo
    "alpaca": {"instruction", "input", "output", "system", "history"},
    "sharegpt": {"conversations", "system", "tools"},
    "openai": {"messages", "tools", "functions", "parallel_tool_calls"},
    "text": {"text"},
}
METADATA_KEYS = {"id", "source", "category", "lang", "language"}  # common bookkeeping, not typos
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
BATCH = 512


@dataclass
class Problem:
    origin: str
    reason: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        return f"{self.origin}: {self.severity}: {self.reason}"


@dataclass
class Validation:
    path: str
    format: str | None = None
    task: str | None = None  # whose row check applied (None: the row formats only)
    rows: int = 0
    valid_rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    token_counts: list[int] = field(default_factory=list)  # of valid rows, in file order
    tokens_estimated: bool = True  # no tokenizer: ~4 characters (or 1 CJK character) per token
    cutoff: int = 1024

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def stats(self) -> dict:
        counts = sorted(self.token_counts)
        n = len(counts)
        pick = (lambda q: counts[min(n - 1, int(q * n))]) if n else (lambda q: 0)
        return {
            "rows": self.rows, "valid_rows": self.valid_rows, "errors": len(self.errors),
            "warnings": len(self.warnings), "total_tokens": sum(counts),
            "trained_tokens": sum(min(c, self.cutoff) for c in counts),
            "tokens_per_row": {"min": pick(0), "median": pick(0.5), "p95": pick(0.95),
                               "max": counts[-1] if n else 0, "mean": round(sum(counts) / n, 1) if n else 0},
            "over_cutoff": sum(c > self.cutoff for c in counts), "cutoff": self.cutoff,
            "tokens_estimated": self.tokens_estimated,
        }

    def as_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "task": self.task, **self.stats(),
                "problems": [{"origin": p.origin, "severity": p.severity, "reason": p.reason}
                             for p in self.problems]}


def validate_file(path: str | Path, fmt: str = "auto", tokenizer=None, template: str = "auto",
                  cutoff: int = 1024, system: str | None = None, *, columns: list[str] | None = None,
                  task=None, task_config=None) -> Validation:
    """Every problem of every row of `path`, and each valid row's token count. With `task` (a
    TaskSpec) and its options, rows are also checked as that task reads them; `fmt` auto then
    means the task's own row format, as in training."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, int) or cutoff <= 0:
        from tunesmith.errors import ConfigError

        raise ConfigError(f"cutoff must be a whole number of tokens > 0 (got {cutoff!r})")
    result = Validation(str(path), cutoff=cutoff, tokens_estimated=tokenizer is None,
                        task=task.name if task is not None else None)
    counter = _TokenCounter(tokenizer, template, system)
    pending: list[tuple[str, object]] = []  # (origin, record) awaiting batch tokenization
    if fmt == "auto" and task is not None and task.data_format:
        fmt = task.data_format
    spec: FormatSpec | None = None if fmt == "auto" else FORMATS.get(fmt)
    with progress("validate", None) as advance:
        for origin, data in _rows(path, result, columns):
            result.rows += 1
            spec = spec or detect_format(data)
            record = _check_row(origin, data, spec, result)
            records = _task_check(record, origin, task, task_config, result) if record is not None else []
            result.valid_rows += bool(records)
            pending += [(r.get(ORIGIN, origin), r) for r in records]
            if len(pending) >= BATCH:
                done = len(pending)
                _count(pending, counter, result)
                advance(done, info=f"{len(result.errors)} errors")
        _count(pending, counter, result)
    result.format = spec.name if spec else None
    if result.rows == 0:
        from tunesmith.errors import DataError

        raise DataError(f"{path}: the file has no rows")
    return result


def _rows(path, result: Validation, columns=None) -> Iterator[tuple[str, object]]:
    from tunesmith.errors import DataError

    started = False
    try:
        for raw in read_rows(path, errors="report", columns=columns):
            started = True
            if isinstance(raw.data, Unreadable):
                result.rows += 1
                result.problems.append(Problem(raw.origin, raw.data.reason))
                continue
            yield raw.origin, raw.data
    except DataError as err:  # a broken JSON array cannot be read past the break
        if not started:
            raise  # nothing readable at all (missing, binary, not an array): a user error
        where, _, reason = str(err).partition(": ")
        result.problems.append(Problem(where, f"{reason}; rows after it were not read"))


def _check_row(origin: str, data, spec: FormatSpec | None, result: Validation):
    """The row as the format reads it (the same call as training's loader), or None with the problem."""
    if spec is None:
        result.problems.append(Problem(origin, undetected_reason(data)))
        return None
    if isinstance(data, dict):
        unknown = ignored_keys(data, spec.name)
        if unknown:
            result.problems.append(Problem(origin, f"unknown key(s) {', '.join(sorted(unknown))} "
                                           f"({spec.name} format ignores them)", "warning"))
    try:
        record = row_to_record(data, spec)
    except RowError as err:
        result.problems.append(Problem(origin, f"{err} ({spec.name} format)"))
        return None
    for i, m in enumerate(record.get("messages", [])):  # empty user/assistant turns are RowErrors
        if not m["content"].strip() and not m.get("tool_calls"):
            result.problems.append(Problem(origin, f"message {i} ({m['role']}) is empty", "warning"))
    return record


def ignored_keys(row: dict, fmt: str) -> set[str]:
    """Keys of `row` that format `fmt` does not read (bookkeeping keys such as id aside)."""
    return set(row) - KNOWN_KEYS.get(fmt, set(row)) - METADATA_KEYS - {ORIGIN}


def _task_check(record: dict, origin: str, task, task_config, result: Validation) -> list[dict]:
    """The task's own check, as training applies it (load.task_records); the records it keeps."""
    report = LoadReport()
    kept = task_records([{**record, ORIGIN: origin}], task, task_config, "skip", report)
    result.problems += [Problem(bad.origin, bad.reason) for bad in report.bad_rows]
    return kept


def _count(pending: list, counter: "_TokenCounter", result: Validation) -> None:
    if not pending:
        return
    for (origin, _), n in zip(pending, counter([r for _, r in pending])):
        result.token_counts.append(n)
        if n > result.cutoff:
            result.problems.append(Problem(origin, f"{n} tokens{' (estimated)' if result.tokens_estimated else ''}"
                                           f" is over the cutoff of {result.cutoff}; training would truncate it"))
    pending.clear()


class _TokenCounter:
    """Tokens of records as training renders them (chat template included), batched."""

    def __init__(self, tokenizer, template: str, system: str | None):
        self.tokenizer, self.system = tokenizer, system
        self.template = get_template(template, tokenizer) if tokenizer is not None else None

    def __call__(self, records: list[dict]) -> list[int]:
        texts = [self._text(r) for r in records]
        if self.tokenizer is None:
            return [estimate_tokens(t) for t in texts]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def _text(self, record: dict) -> str:
        if "messages" not in record:  # plain text, or a task's own columns: all their text
            return record["text"] if isinstance(record.get("text"), str) else _strings(record)
        messages = record["messages"]
        if self.system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.system}, *messages]
        if self.template is None:
            return "\n".join(m["content"] for m in messages)
        return "".join(t for t, _ in self.template.segments(messages, self.tokenizer, record.get("tools")))


def _strings(value) -> str:
    """Every string inside a row (its `_origin` left out), one per line."""
    if isinstance(value, dict):
        return "\n".join(_strings(v) for k, v in value.items() if k != ORIGIN)
    if isinstance(value, list):
        return "\n".join(_strings(v) for v in value)
    return value if isinstance(value, str) else ""


def estimate_tokens(text: str) -> int:
    """~4 characters per token for Latin text, ~1 token per CJK character (BPE vocabularies)."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4 + 4  # + a few for the template's turn markers


def plot_token_histogram(result: Validation, path: str | Path) -> Path:
    """Histogram of tokens per row with the cutoff marked; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tunesmith.utils.io import save_png

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(result.token_counts or [0], bins=min(50, max(5, len(result.token_counts) // 5)), color="#4477aa")
    ax.axvline(result.cutoff, color="#cc3311", linestyle="--", label=f"cutoff {result.cutoff}")
    ax.set_xlabel("tokens per row" + (" (estimated)" if result.tokens_estimated else ""))
    ax.set_ylabel("rows")
    ax.set_title(f"{Path(result.path).name}: {len(result.token_counts)} valid rows, "
                 f"{sum(result.token_counts):,} tokens")
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)
    return Path(path)


def save_outputs(result: Validation, payload: dict, report: str | Path | None = None,
                 histogram: str | Path | None = None) -> Path | None:
    """Write the JSON report and the histogram PNG where asked; the histogram defaults to
    beside the report (<report stem>.tokens.png), and without either nothing is written.
    Neither may replace the file validated. Returns the histogram's path, if written."""
    from tunesmith.data.files import refuse_overwriting_inputs
    from tunesmith.utils.io import write_json

    if histogram is None and report is not None and str(report) != "-":
        histogram = Path(report).with_name(f"{Path(report).stem}.tokens.png")
    refuse_overwriting_inputs([result.path], [report, histogram])
    png = plot_token_histogram(result, histogram) if histogram is not None else None
    if report is not None:
        write_json(report, payload)
    return png
