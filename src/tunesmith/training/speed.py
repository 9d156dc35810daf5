"""Everything the runner does to make a step cheaper, in one place (see docs/performance.md)."""

from __future__ import annotations

from tunesmith.training.batching import BatchingPlan, plan_batching
from tunesmith.training.loss import supports_labelled_logits


def attention_span(model) -> float:
    """Row length at which a layer's attention costs about as much as its linear layers:
    per-layer weights / (2 * hidden size). Packing keeps rows well below it (data/packing.py)."""
    try:
        config = model.config
        embeddings = model.get_input_embeddings().weight
        head = model.get_output_embeddings()
        untied = head.weight.numel() if head is not None and head.weight is not embeddings else 0
        total = sum(p.numel() for p in model.parameters())
        per_layer = (total - embeddings.numel() - untied) / config.num_hidden_layers
        return max(256.0, per_layer / (2 * config.hidden_size))
    except (AttributeError, TypeError, ZeroDivisionError):
        return 3000.0  # a ~100M-parameter decoder; only the row split depends on it


def prepare_speed(config, task, tokenizer, data, args, model, run) -> BatchingPlan:
    """Choose batching (packing / length grouping), apply it to args and model, and say so."""
    plan = plan_batching(config, task, tokenizer, data.train, data.eval, attention_span(model))
    plan.apply(args, model)
    plan.labelled_logits_only = config.train.labelled_logits_only and supports_labelled_logits(model)
    head = "LM head on labelled positions only" if plan.labelled_logits_only else "full LM head"
    import torch

    run.event("speed", f"{plan.note()}; {head}; {torch.get_num_threads()} threads",
              batching=plan.mode, labelled_logits_only=plan.labelled_logits_only,
              packed_attention=plan.packed_attention, **plan.report)
    return plan
