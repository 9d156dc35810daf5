"""Row formats: each module turns one row of its format into a canonical record.

Adding a format touches one file: define `detect(row)` and decorate `to_record(row)` with
`@register_format`, giving an example row (tests/test_formats_contract.py checks every format
on it). Importing this package registers every built-in format.

A format's `kind` says which record it makes: "record" formats make the canonical chat or text
record (`data.records`), or pass a task's own columns through (`rows`); "preference" formats
make a preference pair (`data.preference`); "kto" formats make one reply marked desirable or
not (`data.preference.kto_record`).
Auto-detection looks only among the formats of the kind a reader asks for. A format reads JSON
objects unless it says otherwise (`accepts=list`: a row that is a bare list).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tunesmith.data.records import LayoutError
from tunesmith.registry import Registry, import_submodules


@dataclass(frozen=True)
class FormatSpec:
    name: str
    summary: str
    detect: Callable[[dict], bool]  # does this row look like this format?
    to_record: Callable[[dict], dict]  # canonical record, or RowError with the reason
    priority: int = 50  # lower is tried first by auto-detection
    kind: str = "record"  # "record" or "preference": what to_record makes
    example: dict | list | None = None  # one typical row of this format
    accepts: type = dict  # the JSON type of a row: dict (an object) or list (a bare array)


FORMATS: Registry[FormatSpec] = Registry("data format")


def register_format(name: str, summary: str, *, detect: Callable[[dict], bool], priority: int = 50,
                    kind: str = "record", example: dict | list | None = None, accepts: type = dict):
    """Decorator for a format's `to_record(row)`; `detect(row)` says whether a row is in it
    (it is only asked about rows of the JSON type the format `accepts`)."""

    def typed_detect(row) -> bool:
        return isinstance(row, accepts) and bool(detect(row))

    def wrap(to_record: Callable[[dict], dict]) -> Callable[[dict], dict]:
        FORMATS.register(FormatSpec(name, summary, typed_detect, to_record, priority, kind, example, accepts))
        return to_record

    return wrap


def detect_format(row: object, kind: str = "record") -> FormatSpec | None:
    """The first registered format of `kind`, by priority, that recognises `row`."""
    for spec in sorted(FORMATS, key=lambda s: s.priority):
        if spec.kind == kind and spec.detect(row):
            return spec
    return None


def layouts(kind: str = "record", without: tuple[str, ...] = ()) -> str:
    """Every auto-detected layout of `kind`, for messages about a row that fits none."""
    return " | ".join(f"{s.name}: {s.summary}" for s in sorted(FORMATS, key=lambda s: s.priority)
                      if s.kind == kind and s.name not in ("rows", *without))


def read_as(row: object, kind: str) -> dict:
    """A row of any format of `kind` -> its checked record; LayoutError listing the layouts otherwise."""
    spec = detect_format(row, kind)
    if spec is None:
        shape = f"keys: {', '.join(k for k in row if k != '_origin') or 'none'}" if isinstance(row, dict) else (
            f"a JSON {type(row).__name__}")
        raise LayoutError(f"not a {kind} row ({shape}); expected one of: {layouts(kind)}")
    return spec.to_record(row)


import_submodules(__name__, __path__)  # every module in this package registers itself
