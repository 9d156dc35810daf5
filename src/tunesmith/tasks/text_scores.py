"""ROUGE and BLEU for generation-based eval inside tasks (seq2seq).

A stop-gap owned by the tasks: the metrics registry's own rouge/bleu modules are written
separately; this calls the same libraries (rouge-score, sacrebleu) directly. CJK text is
scored by character, since rouge-score's default tokenizer drops non-ASCII text.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff]")


class _CharAwareTokenizer:
    """Lower-cased words; each CJK character is its own token."""

    def tokenize(self, text: str) -> list[str]:
        return re.findall(rf"{_CJK.pattern}|[^\W_]+", text.lower())


def rouge_bleu(predictions: list[str], references: list[str]) -> dict[str, float]:
    """rouge1/rouge2/rougeL F1 (0-100) and corpus BLEU (sacrebleu, 0-100)."""
    import sacrebleu
    from rouge_score import rouge_scorer

    if not predictions:
        return {}
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_CharAwareTokenizer())
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for pred, ref in zip(predictions, references):
        for key, score in scorer.score(ref, pred).items():
            totals[key] += score.fmeasure
    scores = {k: 100 * v / len(predictions) for k, v in totals.items()}
    cjk = any(_CJK.search(r) for r in references)
    scores["bleu"] = sacrebleu.corpus_bleu(predictions, [references], tokenize="zh" if cjk else "13a").score
    return scores
