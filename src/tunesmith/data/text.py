"""Text inside rows: find it, rewrite it, normalise it and cut it into tokens and shingles.

Data steps work on any row shape (alpaca, sharegpt, OpenAI chat, canonical records, csv
rows), so instead of knowing every format they walk the row and treat every string value
as text, except keys that hold structure (roles, speakers, ids, the row's origin).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Callable, Iterator

from tunesmith.errors import DataError

# Keys whose string values are structure, not prose: never cleaned, hashed or augmented.
STRUCTURAL_KEYS = frozenset({
    "_origin", "role", "from", "type", "id", "tool_call_id", "name", "loss_weight", "weight",
    "_split", "_augmented_from",
})

# Han, Hiragana, Katakana, Hangul: scripts written without spaces between words.
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")


def row_strings(row: object, fields: list[str] | None = None) -> Iterator[str]:
    """Every prose string in a row (restricted to top-level `fields` when given)."""
    if isinstance(row, dict) and fields:
        for key in fields:
            if key in row:
                yield from row_strings(row[key])
        return
    if isinstance(row, str):
        yield row
    elif isinstance(row, dict):
        for key, value in row.items():
            if key not in STRUCTURAL_KEYS:
                yield from row_strings(value)
    elif isinstance(row, list):
        for value in row:
            yield from row_strings(value)


def row_text(row: object, fields: list[str] | None = None) -> str:
    """The row's prose joined into one string (for hashing, shingling and lengths)."""
    return "\n".join(row_strings(row, fields))


class FieldsSeen:
    """Checks a step's `fields` option against the rows it saw: a field no row has is a typo
    (every row's text would be empty, so dedup would keep one row), not an empty text."""

    def __init__(self, step: str, fields: list[str] | None):
        self.step, self.fields, self.keys = step, fields, set()

    def see(self, row: dict) -> None:
        if self.fields:
            self.keys.update(row)

    def check(self) -> None:
        missing = [f for f in self.fields or [] if f not in self.keys]
        if missing and self.keys:
            found = ", ".join(sorted(k for k in self.keys if not k.startswith("_")))
            quoted = ", ".join(map(repr, missing))
            named = f"field {quoted} occurs" if len(missing) == 1 else f"fields {quoted} occur"
            raise DataError(f"{self.step}: {named} in no row "
                            f"(the rows have: {found}); fix the fields option")


def map_strings(row: object, fn: Callable[[str], str], fields: list[str] | None = None):
    """A copy of the row with `fn` applied to every prose string."""
    if isinstance(row, dict) and fields:
        return {k: (map_strings(v, fn) if k in fields else v) for k, v in row.items()}
    if isinstance(row, str):
        return fn(row)
    if isinstance(row, dict):
        return {k: (v if k in STRUCTURAL_KEYS else map_strings(v, fn)) for k, v in row.items()}
    if isinstance(row, list):
        return [map_strings(v, fn) for v in row]
    return row


def normalize(text: str) -> str:
    """Canonical form for comparing rows: NFKC, case-folded, punctuation and spacing removed."""
    text = _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    return _SPACE.sub(" ", text).strip()


def tokens(text: str) -> list[str]:
    """Words for space-separated scripts and single characters for CJK (which has no spaces),
    so n-grams over Chinese compare characters the way n-grams over English compare words."""
    return _TOKEN.findall(normalize(text))


def is_cjk_heavy(text: str) -> bool:
    return len(_CJK_CHAR.findall(text)) * 2 > len(text.strip() or " ")


def ngrams(items: list[str], n: int) -> set[str]:
    if len(items) < n:
        return {" ".join(items)} if items else set()
    return {" ".join(items[i:i + n]) for i in range(len(items) - n + 1)}


def text_hash(text: str) -> bytes:
    """8 bytes of the normalised text's hash: small enough to keep a million in memory."""
    return hashlib.blake2b(normalize(text).encode("utf-8"), digest_size=8).digest()
