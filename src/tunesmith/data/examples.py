"""Eval rows as (prompt conversation, reference reply) pairs, each keeping its file:line."""

from __future__ import annotations

from dataclasses import dataclass

from tunesmith.data.load import load_records
from tunesmith.data.records import origin
from tunesmith.errors import DataError


@dataclass
class Example:
    origin: str
    messages: list[dict]  # the conversation up to (not including) the reply to produce
    reference: str | None  # the last assistant reply in the row, if any
    record: dict  # the canonical record, for teacher-forced scoring

    @property
    def tools(self) -> str | None:
        """The row's tools (JSON text), rendered into the prompt as training rendered them."""
        return self.record.get("tools")

    @property
    def prompt(self) -> str:
        """The last user message: what a reader of the report needs to see."""
        users = [m["content"] for m in self.messages if m["role"] == "user"]
        return users[-1] if users else (self.record.get("text", "")[:200])


def to_example(record: dict) -> Example:
    if "messages" not in record:  # plain text: scored for perplexity only
        return Example(origin(record), [], None, record)
    messages = record["messages"]
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return Example(origin(record), messages, None, record)
    return Example(origin(record), messages[:last], messages[last]["content"], record)


def load_examples(path: str, fmt: str = "auto", on_bad_row: str = "error", limit: int | None = None) -> list[Example]:
    records, _ = load_records([path], fmt, on_bad_row)
    if not records:
        raise DataError(f"{path}: the eval set is empty; give a file with at least one row")
    examples = [to_example(r) for r in records]
    return examples[:limit] if limit else examples
