"""Helpers shared by the text metrics: input checks and CJK-aware word splitting."""

from __future__ import annotations

import re

from tunesmith.errors import TunesmithError


class MetricInputError(TunesmithError):
    """Predictions and references that a metric cannot score."""


# CJK ideographs, kana and hangul: scripts written without spaces, so each character is a word.
_CJK = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
    "\U00020000-\U0002a6df"
)
CJK_CHAR = re.compile(f"[{_CJK}]")
_WORD_OR_CJK = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")


def has_cjk(texts) -> bool:
    return any(CJK_CHAR.search(t or "") for t in texts)


def cjk_aware_words(text: str, lowercase: bool = True) -> list[str]:
    """Latin-script words as runs of letters/digits; every CJK character on its own."""
    text = text.lower() if lowercase else text
    return [w for w in _WORD_OR_CJK.findall(text) if w != "_"]


def check_pairs(name: str, predictions: list, references: list | None, *, needs_references: bool = True) -> None:
    """Raise a clear error for empty input, missing references or a length mismatch."""
    if not predictions:
        raise MetricInputError(f"metric {name}: no predictions to score (the eval set is empty)")
    if references is None or (needs_references and all(r is None for r in references)):
        if needs_references:
            raise MetricInputError(
                f"metric {name} needs references, but none were given; give rows with an assistant "
                "reply (the reference), or use a reference-free metric (regex, json, judge)"
            )
        return
    if len(predictions) != len(references):
        raise MetricInputError(
            f"metric {name}: {len(predictions)} predictions but {len(references)} references; "
            "they must pair up one to one"
        )
    if needs_references:
        missing = [i for i, r in enumerate(references) if r is None]
        if missing:
            raise MetricInputError(
                f"metric {name}: rows {', '.join(str(i + 1) for i in missing[:10])} have no reference"
            )


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
