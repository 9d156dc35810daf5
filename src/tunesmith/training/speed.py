"""Everything the runner does to make a step cheaper, in one place (see docs/performance.md)."""

from __future__ import annotations

import os
from pathlib import Path

from tunesmith.training.batching import BatchingPlan, plan_batching
from tunesmith.training.loss import supports_labelled_logits


def usable_cpus() -> int:
    """CPUs this process may really use: its affinity, capped by a cgroup CPU quota (containers).
    torch counts the machine's cores, which oversubscribes a container limited to fewer."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return count


def configure_threads(threads: int | None) -> int:
    """Intra-op threads: as configured, else one per usable CPU. Returns the number set."""
    import torch

    wanted = threads or usable_cpus()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


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
    run.event("speed", f"{plan.note()}; {head}; {configure_threads(config.train.threads)} threads",
              batching=plan.mode, labelled_logits_only=plan.labelled_logits_only, **plan.report)
    return plan
