"""Rows as they are: the task reads its own columns (classification, QA, preference pairs).

Never auto-detected; a task that names it as its `data_format` gets each row's fields
unchanged (plus `_origin`), so the task can say which column of which line is wrong.
"""

from __future__ import annotations

from tunesmith.data.formats import register_format
from tunesmith.data.records import RowError


def detect(row: dict) -> bool:
    return False


@register_format("rows", "fields as written; the task reads its own columns", detect=detect, priority=100,
                 example={"sentence": "a fine film", "label": "positive"})
def to_record(row: dict) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"expected an object with named fields, got {type(row).__name__}")
    return dict(row)
