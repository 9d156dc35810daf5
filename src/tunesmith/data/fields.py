"""Look up a user's field in a row by a dotted path: "label", "meta.date", "messages.-1.content"."""

from __future__ import annotations

from tunesmith.data.records import ORIGIN
from tunesmith.errors import DataError

_MISSING = object()


def get_field(row: dict, path: str, default=_MISSING):
    """The value at `path`; a missing field is a DataError naming the row and the key."""
    node: object = row
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and _is_index(part) and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            if default is not _MISSING:
                return default
            keys = ", ".join(k for k in row if k != ORIGIN) if isinstance(row, dict) else ""
            raise DataError(f"{row.get(ORIGIN, '?')}: no field {path!r} in this row (keys: {keys})")
    return node


def _is_index(part: str) -> bool:
    return part.lstrip("-").isdigit()
