"""Where a reply's text ends: before the first stop string, without surrounding whitespace; and
the same reply handed out piece by piece while it is generated."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def cut(text: str, stops: Iterable[str]) -> str:
    """`text` up to the first stop string, stripped."""
    ends = [text.find(s) for s in stops if s and s in text]
    return text[:min(ends, default=len(text))].strip()


def visible_pieces(pieces: Iterable[str], stops: tuple[str, ...]) -> Iterator[str]:
    """Pieces whose concatenation is `cut` of the concatenated input. A piece is handed out only
    once it cannot change: text that may be the start of a stop string, or whitespace that may
    turn out to be trailing, waits for the next piece. Ends at the first stop string."""
    text, shown = "", ""
    for piece in pieces:
        text += piece
        if any(s and s in text for s in stops):
            break
        safe = text[:len(text) - _held(text, stops)].strip()
        if len(safe) > len(shown):
            yield safe[len(shown):]
            shown = safe
    rest = cut(text, stops)[len(shown):]
    if rest:
        yield rest


def _held(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of `text` that a stop string starts with."""
    return max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
