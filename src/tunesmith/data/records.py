"""Canonical records: what every format adapter produces and every later stage consumes.

A chat record is `{"messages": [...], "tools": str | None}` where each message has a
`role` (system, user, assistant, tool) and `content`, optionally `weight` (0 excludes an
assistant turn from the loss) and `tool_calls`. A text record (continued pretraining) is
`{"text": str}`. Every record keeps `_origin`, "file:line", so a problem found anywhere
downstream can point at the row that caused it.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from tunesmith.errors import DataError

ROLES = ("system", "user", "assistant", "tool")
ORIGIN = "_origin"


class RowError(ValueError):
    """A row that does not fit its format; the message says why."""


class LayoutError(RowError):
    """A row whose shape fits none of the layouts a task reads (missing columns, unknown keys):
    the message is followed by the task's accepted layouts wherever the task is known."""


def chat_record(messages: list[dict], tools: str | None = None) -> dict:
    """Build and check a chat record; raises RowError with the reason."""
    check_conversation(messages)
    record = {"messages": messages}
    if tools:
        record["tools"] = tools
    return record


# Rows read to generate from may stop at a user turn (a prompt with no answer yet); a context
# flag rather than a parameter, because every format adapter builds its records through here.
_PROMPTS_ONLY_OK: ContextVar[bool] = ContextVar("prompts_only_ok", default=False)


@contextmanager
def prompts_accepted():
    """Within this block a conversation without an assistant turn is a valid row (a prompt)."""
    token = _PROMPTS_ONLY_OK.set(True)
    try:
        yield
    finally:
        _PROMPTS_ONLY_OK.reset(token)


def check_conversation(messages: list[dict]) -> None:
    if not messages:
        raise RowError("the conversation is empty")
    turns = [m for m in messages if m["role"] != "system"]
    if any(m["role"] == "system" for m in messages[1:]):
        raise RowError("a system message may only come first")
    if not any(m["role"] == "assistant" for m in turns) and not (_PROMPTS_ONLY_OK.get() and turns):
        raise RowError("the conversation has no assistant turn to learn from")
    if turns and turns[0]["role"] != "user":
        raise RowError(f"the conversation starts with a {turns[0]['role']} turn, not a user turn")
    for prev, cur in zip(turns, turns[1:]):
        if prev["role"] == cur["role"] == "user" or prev["role"] == cur["role"] == "assistant":
            raise RowError(f"two {cur['role']} turns in a row; turns must alternate")
    for i, m in enumerate(messages):
        if not isinstance(m.get("content"), str) and not m.get("tool_calls"):
            raise RowError(f"a {m['role']} message has no text content")
        if m["role"] in ("user", "assistant") and not m["content"].strip() and not m.get("tool_calls"):
            # The one definition of a bad row for training and `data validate` alike: an empty
            # (or null) turn would train on nothing or teach the model to answer with nothing.
            raise RowError(f"message {i} ({m['role']}) is empty; user and assistant turns need text")


def require_str(row: dict, key: str, *, optional: bool = False) -> str:
    """The string at `key`, or a RowError naming the key."""
    value = row.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        kind = "missing" if value is None else f"a {type(value).__name__}, not text"
        raise RowError(f"field {key!r} is {kind}")
    if not optional and not value.strip():
        raise RowError(f"field {key!r} is empty")
    return value


def origin(record: dict) -> str:
    return record.get(ORIGIN, "?")


def require_rows(records: list, what: str) -> list:
    if not records:
        raise DataError(f"{what}: no rows left; check the files and filters (data.max_rows, cutoff)")
    return records
