"""Check a data file row by row and measure it: every problem with its line, then tokens.

Unlike loading for training, validation never stops at a bad row: unparsable lines,
rows that fit no format, conversations in the wrong order and rows over the cutoff are all
listed, so one run shows everything to fix. Rows stream through; memory holds only one
integer per row (its token count).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tunesmith.data.formats import FORMATS, FormatSpec, detect_format
from tunesmith.data.readers import Unreadable, read_rows
from tunesmith.data.records import RowError
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
        return {"path": self.path, "format": self.format, **self.stats(),
                "problems": [{"origin": p.origin, "severity": p.severity, "reason": p.reason}
                             for p in self.problems]}


def validate_file(path: str | Path, fmt: str = "auto", tokenizer=None, template: str = "auto",
                  cutoff: int = 1024, system: str | None = None) -> Validation:
    """Every problem of every row of `path`, and each valid row's token count."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, int) or cutoff <= 0:
        from tunesmith.errors import ConfigError

        raise ConfigError(f"cutoff must be a whole number of tokens > 0 (got {cutoff!r})")
    result = Validation(str(path), cutoff=cutoff, tokens_estimated=tokenizer is None)
    counter = _TokenCounter(tokenizer, template, system)
    pending: list[tuple[str, object]] = []  # (origin, record) awaiting batch tokenization
    spec: FormatSpec | None = None if fmt == "auto" else FORMATS.get(fmt)
    with progress("validate", None) as advance:
        for origin, data in _rows(path, result):
            result.rows += 1
            spec = spec or detect_format(data)
            record = _check_row(origin, data, spec, result)
            if record is not None:
                result.valid_rows += 1
                pending.append((origin, record))
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


def _rows(path, result: Validation) -> Iterator[tuple[str, object]]:
    from tunesmith.errors import DataError

    started = False
    try:
        for raw in read_rows(path, errors="report"):
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
    if not isinstance(data, dict):
        result.problems.append(Problem(origin, f"expected a JSON object, got {type(data).__name__}"))
        return None
    if spec is None or not spec.detect(data):
        keys = ", ".join(sorted(data)) or "none"
        result.problems.append(Problem(origin, f"fits no format (keys: {keys}); formats: {', '.join(FORMATS.names())}"))
        return None
    unknown = set(data) - KNOWN_KEYS.get(spec.name, set(data)) - METADATA_KEYS
    if unknown:
        result.problems.append(Problem(origin, f"unknown key(s) {', '.join(sorted(unknown))} "
                                       f"({spec.name} format ignores them)", "warning"))
    try:
        record = spec.to_record(data)
    except RowError as err:
        result.problems.append(Problem(origin, f"{err} ({spec.name} format)"))
        return None
    for i, m in enumerate(record.get("messages", [])):  # empty user/assistant turns are RowErrors
        if not m["content"].strip() and not m.get("tool_calls"):
            result.problems.append(Problem(origin, f"message {i} ({m['role']}) is empty", "warning"))
    return record


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
        if "messages" not in record:
            return record.get("text", "")
        messages = record["messages"]
        if self.system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.system}, *messages]
        if self.template is None:
            return "\n".join(m["content"] for m in messages)
        return "".join(t for t, _ in self.template.segments(messages, self.tokenizer, record.get("tools")))


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
