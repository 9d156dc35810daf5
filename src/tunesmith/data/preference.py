"""Preference pairs: the record every preference layout (data/formats/*_preference.py) reads
into, `{"prompt": [messages], "chosen": text, "rejected": text}`, and the checks all share.
A pair whose chosen equals its rejected answer teaches nothing and is a bad row."""

from __future__ import annotations

from tunesmith.data.records import RowError

ROLE = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
        "observation": "tool", "tool": "tool", "function_call": "assistant", "function": "tool"}


def text(content) -> str:
    """Message content as text: a string, or a list of {type: text, text|value} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", p.get("value", "")) for p in content if isinstance(p, dict))
    raise RowError(f"message content must be text, got {type(content).__name__}")


def message(m) -> dict:
    if not isinstance(m, dict):
        raise RowError(f"a message must be an object, got {type(m).__name__}")
    role = ROLE.get(m.get("role", m.get("from")))
    if role is None:
        raise RowError(f"unknown message role {m.get('role', m.get('from'))!r}")
    return {"role": role, "content": text(m.get("content", m.get("value", "")))}


def messages(value) -> list[dict]:
    """Messages given as a list (role/content or from/value), or one user text."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise RowError(f"expected a list of messages, got {type(value).__name__}")
    return [message(m) for m in value]


def reply(value) -> str:
    """A reply given as text, one message, or a list of messages (the last assistant one)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return message(value)["content"]
    if isinstance(value, list) and value:
        replies = [m for m in messages(value) if m["role"] == "assistant"]
        if replies:
            return replies[-1]["content"]
    raise RowError("a chosen/rejected reply must be text, a message, or a list with an assistant message")


def preference_pair(row: dict, prompt: list[dict], chosen: str, rejected: str) -> dict:
    """The checked record; the row's `system` (if any) opens the prompt."""
    if row.get("system") and (not prompt or prompt[0]["role"] != "system"):
        prompt = [{"role": "system", "content": row["system"]}, *prompt]
    if not prompt or prompt[-1]["role"] not in ("user", "tool"):
        raise RowError("the prompt must end with a user turn")
    if not chosen.strip() or not rejected.strip():
        raise RowError("the chosen or rejected reply is empty")
    if chosen.strip() == rejected.strip():
        raise RowError("chosen and rejected are the same reply; the pair teaches nothing")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def kto_record(row: dict, prompt: list[dict], completion: str) -> dict:
    """One reply marked desirable (`label: true`) or undesirable (`false`) after its prompt."""
    if not isinstance(row.get("label"), bool):
        raise RowError(f"a KTO row needs label: true or false (got {row.get('label')!r})")
    if row.get("system") and (not prompt or prompt[0]["role"] != "system"):
        prompt = [{"role": "system", "content": row["system"]}, *prompt]
    if not prompt or prompt[-1]["role"] not in ("user", "tool"):
        raise RowError("the prompt must end with a user turn")
    if not completion.strip():
        raise RowError("the completion is empty")
    return {"prompt": prompt, "completion": completion, "label": row["label"]}


def preference_record(row: dict) -> dict:
    """A row of any preference format -> the checked pair; LayoutError naming the layouts otherwise."""
    from tunesmith.data.formats import read_as  # the formats import this module

    return read_as(row, "preference")
