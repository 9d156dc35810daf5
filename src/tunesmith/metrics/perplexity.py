"""Perplexity from per-row negative log-likelihoods, weighted by token count.

The evaluation layer scores each row with the model (teacher forcing on the reference reply);
this metric only aggregates, so the same numbers come out of `tunesmith eval` and training.
"""

from __future__ import annotations

import math

from tunesmith.metrics import register_metric
from tunesmith.metrics.text_utils import MetricInputError


@register_metric("perplexity", "exp(mean token negative log-likelihood) of the reference replies",
                 greater_is_better=False, inputs="nll", needs_references=False)
def perplexity(predictions: list[dict], references=None) -> dict:
    """predictions: one {"nll": summed nats, "tokens": count} per row (rows with 0 tokens skipped)."""
    scored = [p for p in predictions if p and p.get("tokens")]
    if not scored:
        raise MetricInputError("metric perplexity: no row has a token to score (the eval set is empty)")
    nll = sum(p["nll"] for p in scored)
    tokens = sum(p["tokens"] for p in scored)
    rows = [
        {"perplexity": math.exp(min(p["nll"] / p["tokens"], 50))} if p and p.get("tokens") else {}
        for p in predictions
    ]
    return {"perplexity": math.exp(min(nll / tokens, 50)), "loss": nll / tokens, "rows": rows}
