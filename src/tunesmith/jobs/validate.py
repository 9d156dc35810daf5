"""A training file checked as OpenAI checks it on upload, line by line, keeping the first problems
with their line numbers: each line a JSON object; chat rows with a `messages` list of known roles,
content present, at least one assistant message; preference (DPO) rows with `input.messages`,
`preferred_output` and `non_preferred_output`. Rows in tunesmith's own formats (alpaca, sharegpt,
text ...) pass when their format reads them (tunesmith.data.formats)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tunesmith.data.formats import FORMATS
from tunesmith.data.records import RowError

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
MAX_PROBLEMS = 10


@dataclass
class FileCheck:
    rows: int = 0
    kinds: set[str] = field(default_factory=set)  # "chat", "preference"
    problems: list[dict] = field(default_factory=list)  # {line, code, message}

    @property
    def kind(self) -> str | None:
        return next(iter(self.kinds)) if len(self.kinds) == 1 else None

    def add(self, line: int, code: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"line": line, "code": code, "message": f"line {line}: {message}"})

    def as_dict(self) -> dict:
        return {"rows": self.rows, "kind": self.kind, "problems": self.problems}


def check_lines(content: bytes) -> FileCheck:
    check = FileCheck()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as err:
        check.add(text_line(content, err.start), "invalid_encoding", "the file is not UTF-8 text")
        return check
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        check.rows += 1
        try:
            row = json.loads(line)
        except ValueError as err:
            check.add(number, "invalid_json", f"not valid JSON ({err.msg})")
            continue
        _check_row(row, number, check)
    if check.rows == 0:
        check.add(1, "empty_file", "the file has no rows")
    elif not check.problems and len(check.kinds) > 1:
        check.add(1, "mixed_formats", "chat rows and preference rows are mixed; a job trains one kind")
    return check


def text_line(content: bytes, offset: int) -> int:
    return content[:offset].count(b"\n") + 1


def _check_row(row, number: int, check: FileCheck) -> None:
    if not isinstance(row, dict):
        return check.add(number, "invalid_row", f"expected a JSON object, got {type(row).__name__}")
    if "messages" in row:
        if _check_messages(row["messages"], number, check, "messages", need_assistant=True):
            check.kinds.add("chat")
        return None
    if "preferred_output" in row or "non_preferred_output" in row:
        prompt = row.get("input") if isinstance(row.get("input"), dict) else {}
        ok = _check_messages(prompt.get("messages"), number, check, "input.messages", need_assistant=False)
        for key in ("preferred_output", "non_preferred_output"):
            ok = ok and _check_messages(row.get(key), number, check, key, need_assistant=True)
        if ok:
            check.kinds.add("preference")
        return None
    return _check_other_format(row, number, check)


def _check_messages(messages, number: int, check: FileCheck, key: str, need_assistant: bool) -> bool:
    if not isinstance(messages, list) or not messages:
        check.add(number, "missing_messages", f"`{key}` must be a non-empty list of messages")
        return False
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            check.add(number, "invalid_message", f"{key}[{i}] is not an object")
            return False
        role = message.get("role")
        if role not in ROLES:
            check.add(number, "invalid_role", f"{key}[{i}] has role {role!r}; known roles: {', '.join(sorted(ROLES))}")
            return False
        calls = message.get("tool_calls") or message.get("function_call")
        if not calls and not isinstance(message.get("content"), (str, list)):
            check.add(number, "missing_content", f"{key}[{i}] ({role}) has no content")
            return False
    if need_assistant and not any(m.get("role") == "assistant" for m in messages):
        check.add(number, "missing_assistant_message", f"`{key}` has no assistant message to learn from")
        return False
    return True


def _check_other_format(row: dict, number: int, check: FileCheck) -> None:
    for spec in sorted(FORMATS, key=lambda s: s.priority):
        if spec.detect(row):
            try:
                spec.to_record(row)
            except RowError as err:
                return check.add(number, "invalid_row", f"{err} ({spec.name} format)")
            check.kinds.add("preference" if spec.kind == "preference" else "chat")
            return None
    keys = ", ".join(sorted(row)) or "none"
    check.add(number, "unknown_format", f"a row needs `messages` (keys found: {keys}); tunesmith also reads "
              f"{', '.join(s.name for s in FORMATS)}")
