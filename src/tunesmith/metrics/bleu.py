"""Corpus BLEU with sacrebleu; Chinese references use sacrebleu's zh tokenizer."""

from __future__ import annotations

import sacrebleu

from tunesmith.metrics import register_metric
from tunesmith.metrics.text_utils import check_pairs, has_cjk


def pick_tokenizer(references: list[str], tokenize: str) -> str:
    """auto: sacrebleu's `zh` when any reference has CJK characters, else its default `13a`."""
    if tokenize != "auto":
        return tokenize
    return "zh" if has_cjk(references) else "13a"


@register_metric("bleu", "corpus BLEU, 0-100 (sacrebleu; zh tokenizer for Chinese)")
def bleu(predictions: list[str], references: list[str], tokenize: str = "auto", lowercase: bool = False) -> dict:
    check_pairs("bleu", predictions, references)
    tokenizer = pick_tokenizer(references, tokenize)
    corpus = sacrebleu.corpus_bleu(predictions, [references], tokenize=tokenizer, lowercase=lowercase)
    # Per row: sacrebleu's sentence-level BLEU (smoothed, effective n-gram order), which is
    # what it recommends for single sentences; the headline number stays corpus BLEU.
    rows = [
        {"bleu": sacrebleu.sentence_bleu(p, [r], tokenize=tokenizer, lowercase=lowercase).score}
        for p, r in zip(predictions, references)
    ]
    return {"bleu": corpus.score, "bleu_brevity_penalty": corpus.bp, "rows": rows}
