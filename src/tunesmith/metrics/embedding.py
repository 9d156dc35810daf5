"""Meaning-level similarity with a sentence encoder (minilm-l6 by default), fully offline.

`embedding_similarity`: cosine of mean-pooled sentence embeddings (how sentence-transformers
pools all-MiniLM-L6-v2). `bertscore`: BERTScore's greedy token matching (precision, recall,
F1 over contextual token embeddings), without idf weighting or baseline rescaling, so values
sit high (unrelated sentences still score ~0.2-0.5); compare models, not absolute numbers.
"""

from __future__ import annotations

from functools import lru_cache

from tunesmith.metrics import register_metric
from tunesmith.metrics.text_utils import check_pairs, mean

DEFAULT_ENCODER = "minilm-l6"


@lru_cache(maxsize=2)
def load_encoder(name_or_path: str):
    """(tokenizer, model) of an encoder: a zoo name or a local Hugging Face directory."""
    from transformers import AutoModel, AutoTokenizer

    from tunesmith.models import resolve_model

    model_dir = resolve_model(name_or_path)
    return AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()


def _encode(texts: list[str], encoder: str, batch_size: int = 32):
    """Per text: (token embeddings without special tokens, mean-pooled sentence embedding)."""
    import torch

    tokenizer, model = load_encoder(encoder)
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=256, return_tensors="pt", return_special_tokens_mask=True)
            special = batch.pop("special_tokens_mask")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            for i in range(len(hidden)):
                keep = (batch["attention_mask"][i] == 1) & (special[i] == 0)
                out.append((hidden[i][keep], pooled[i]))
    return out


def _cosine(a, b) -> float:
    import torch

    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@register_metric("embedding_similarity", "cosine of mean-pooled sentence embeddings (minilm-l6)")
def embedding_similarity(predictions: list[str], references: list[str], model: str = DEFAULT_ENCODER) -> dict:
    check_pairs("embedding_similarity", predictions, references)
    preds, refs = _encode(predictions, model), _encode(references, model)
    rows = [
        {"embedding_similarity": _cosine(p[1], r[1]) if p[0].numel() and r[0].numel() else 0.0}
        for p, r in zip(preds, refs)
    ]
    return {"embedding_similarity": mean(r["embedding_similarity"] for r in rows), "rows": rows}


def _greedy_match(pred_tokens, ref_tokens) -> dict:
    import torch

    if not len(pred_tokens) or not len(ref_tokens):
        return {"bertscore_precision": 0.0, "bertscore_recall": 0.0, "bertscore_f1": 0.0}
    p = torch.nn.functional.normalize(pred_tokens, dim=-1)
    r = torch.nn.functional.normalize(ref_tokens, dim=-1)
    sim = p @ r.T
    precision = float(sim.max(dim=1).values.mean())
    recall = float(sim.max(dim=0).values.mean())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"bertscore_precision": precision, "bertscore_recall": recall, "bertscore_f1": f1}


@register_metric("bertscore", "BERTScore-style greedy token matching P/R/F1 (minilm-l6, no rescaling)")
def bertscore(predictions: list[str], references: list[str], model: str = DEFAULT_ENCODER) -> dict:
    check_pairs("bertscore", predictions, references)
    preds, refs = _encode(predictions, model), _encode(references, model)
    rows = [_greedy_match(p[0], r[0]) for p, r in zip(preds, refs)]
    keys = ("bertscore_precision", "bertscore_recall", "bertscore_f1")
    return {**{k: mean(r[k] for r in rows) for k in keys}, "rows": rows}
