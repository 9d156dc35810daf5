"""ROUGE-1/2/L F-measure with rouge-score, made CJK-aware.

rouge-score's own tokenizer keeps only [a-z0-9], so Chinese text scores 0 against anything.
Ours keeps its rules for Latin script (lowercase, Porter stemming of words longer than 3
letters when asked) and makes every CJK character a token, the usual practice for Chinese ROUGE.
"""

from __future__ import annotations

from rouge_score import rouge_scorer, tokenizers

from tunesmith.metrics import register_metric
from tunesmith.metrics.text_utils import CJK_CHAR, check_pairs, cjk_aware_words, mean

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class CjkAwareTokenizer(tokenizers.Tokenizer):
    def __init__(self, use_stemmer: bool = False):
        self._stemmer = None
        if use_stemmer:
            from nltk.stem import porter

            self._stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        words = cjk_aware_words(text)
        if self._stemmer is None:
            return words
        return [self._stemmer.stem(w) if len(w) > 3 and not CJK_CHAR.match(w) else w for w in words]


@register_metric("rouge", "ROUGE-1/2/L F1 (rouge-score; Chinese scored per character)")
def rouge(predictions: list[str], references: list[str], use_stemmer: bool = False) -> dict:
    check_pairs("rouge", predictions, references)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=CjkAwareTokenizer(use_stemmer))
    rows = []
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, prediction)
        rows.append({t: scores[t].fmeasure for t in ROUGE_TYPES})
    result = {t: mean(r[t] for r in rows) for t in ROUGE_TYPES}
    result["rows"] = rows
    return result
