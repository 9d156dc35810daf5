"""Row formats: each module turns one row of its format into a canonical record.

Adding a format touches one file: define `detect(row)` and `to_record(row)` and call
`register_format` with an example row (tests/test_formats_contract.py checks every format on it).
Importing this package registers every built-in format.
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
    example: dict | None = None  # one typical row of this format


FORMATS: Registry[FormatSpec] = Registry("data format")


def register_format(name: str, summary: str, detect, to_record, priority: int = 50,
                    example: dict | None = None) -> FormatSpec:
    return FORMATS.add(name, FormatSpec(name, summary, detect, to_record, priority, example))


def detect_format(row: object) -> FormatSpec | None:
    """The first registered format, by priority, that recognises `row`."""
    if not isinstance(row, dict):
        return None
    for spec in sorted(FORMATS, key=lambda s: s.priority):
        if spec.detect(row):
            return spec
    return None


import_submodules(__name__, __path__)  # every module in this package registers itself
