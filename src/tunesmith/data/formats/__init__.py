"""Row formats: each module turns one row of its format into a canonical record.

Adding a format touches one file: define `detect(row)` and decorate `to_record(row)` with
`@register_format`, giving an example row (tests/test_formats_contract.py checks every format
on it). Importing this package registers every built-in format.

A format's `kind` says which record it makes: "record" formats make the canonical chat or text
record (`data.records`), or pass a task's own columns through (`rows`); "preference" formats
make a preference pair (`data.preference`).
Auto-detection looks only among the formats of the kind a reader asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tunesmith.registry import Registry, import_submodules


@dataclass(frozen=True)
class FormatSpec:
    name: str
    summary: str
    detect: Callable[[dict], bool]  # does this row look like this format?
    to_record: Callable[[dict], dict]  # canonical record, or RowError with the reason
    priority: int = 50  # lower is tried first by auto-detection
    kind: str = "record"  # "record" or "preference": what to_record makes
    example: dict | None = None  # one typical row of this format


FORMATS: Registry[FormatSpec] = Registry("data format")


def register_format(name: str, summary: str, *, detect: Callable[[dict], bool], priority: int = 50,
                    kind: str = "record", example: dict | None = None):
    """Decorator for a format's `to_record(row)`; `detect(row)` says whether a row is in it."""

    def wrap(to_record: Callable[[dict], dict]) -> Callable[[dict], dict]:
        FORMATS.register(FormatSpec(name, summary, detect, to_record, priority, kind, example))
        return to_record

    return wrap


def detect_format(row: object, kind: str = "record") -> FormatSpec | None:
    """The first registered format of `kind`, by priority, that recognises `row`."""
    if not isinstance(row, dict):
        return None
    for spec in sorted(FORMATS, key=lambda s: s.priority):
        if spec.kind == kind and spec.detect(row):
            return spec
    return None


import_submodules(__name__, __path__)  # every module in this package registers itself
