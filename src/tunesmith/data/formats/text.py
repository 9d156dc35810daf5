"""Plain text rows for continued pretraining: {"text": ...}."""

from __future__ import annotations

from tunesmith.data.formats import register_format
from tunesmith.data.records import require_str


def detect(row: dict) -> bool:
    return "text" in row and isinstance(row["text"], str)


@register_format("text", "plain text for continued pretraining: {text}", detect=detect, priority=90,
                 example={"text": "The quick brown fox jumps over the lazy dog."})
def to_record(row: dict) -> dict:
    return {"text": require_str(row, "text")}
