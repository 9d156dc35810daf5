"""SQuAD exact match and F1 with the official answer normalisation; character-level for Chinese.

English follows the SQuAD v1.1/v2.0 evaluation script: lower case, drop punctuation and the
articles a/an/the, collapse whitespace, then compare bags of words. Text with CJK characters
is segmented like the CMRC 2018 script: each CJK character is a token, other runs stay words.
Scores are percentages (0-100), as the official scripts print them. An unanswerable question
has no gold answers; it scores 1 only for an empty prediction.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

from tunesmith.metrics import register_metric

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff]")
_CJK_PUNCT = set("，。！？；：、“”‘’（）《》【】—…·「」『』〈〉〔〕～")


def _is_punct(ch: str) -> bool:
    return ch in string.punctuation or ch in _CJK_PUNCT or unicodedata.category(ch).startswith("P")


def normalize_answer(text: str) -> str:
    """The official SQuAD normalisation (plus CJK punctuation)."""
    text = "".join(ch for ch in text.lower() if not _is_punct(ch))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Tokens for F1: words for alphabetic text, single characters for CJK."""
    normalized = normalize_answer(text)
    if not _CJK.search(normalized):
        return normalized.split()
    tokens: list[str] = []
    for word in normalized.split():
        tokens += [t for t in re.split(f"({_CJK.pattern})", word) if t]
    return tokens


def exact_match(prediction: str, gold: str) -> float:
    if _CJK.search(prediction + gold):  # CMRC compares without spaces between characters
        return float(normalize_answer(prediction).replace(" ", "") == normalize_answer(gold).replace(" ", ""))
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = answer_tokens(prediction), answer_tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(score, prediction: str, golds: list[str]) -> float:
    """Max over the gold answers; no gold answer (SQuAD v2 unanswerable) wants an empty prediction."""
    if not golds:
        return float(not normalize_answer(prediction))
    return max(score(prediction, g) for g in golds)


@register_metric("squad", "exact match and token F1 with SQuAD normalisation (CJK by character)")
def squad_scores(predictions: list[str], references: list[list[str]], **options) -> dict[str, float]:
    """`references[i]` is the list of gold answers of question i ([] when unanswerable)."""
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    em = [best_over_golds(exact_match, p, g) for p, g in zip(predictions, references)]
    f1 = [best_over_golds(token_f1, p, g) for p, g in zip(predictions, references)]
    return {"exact_match": 100.0 * sum(em) / len(em), "f1": 100.0 * sum(f1) / len(f1)}
