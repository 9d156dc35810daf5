"""Figures for the export report: size, latency, tokens/s, eval loss and parity."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path


def folder_bytes(folder: Path, files: list[str]) -> int:
    return sum((folder / f).stat().st_size for f in files)


def speed(runtime, prompts: list[list[int]], new_tokens: int) -> tuple[dict, list[list[int]]]:
    """Greedy decoding of `new_tokens` per prompt, one prompt at a time, after one warm-up.

    Returns the figures and the generated ids (compared across formats for greedy parity)."""
    runtime.greedy(prompts[0], 2)
    seconds, outputs = [], []
    for ids in prompts:
        start = time.perf_counter()
        outputs.append(runtime.greedy(ids, new_tokens))
        seconds.append(time.perf_counter() - start)
    ordered = sorted(seconds)
    return {
        "prompts": len(prompts), "new_tokens_per_prompt": new_tokens,
        "latency_p50_s": round(statistics.median(ordered), 4),
        "latency_p95_s": round(_percentile(ordered, 0.95), 4),
        "tokens_per_s": round(new_tokens * len(prompts) / sum(seconds), 2),
    }, outputs


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def eval_loss(runtime, features: list[dict], collator, batch_size: int = 8) -> float | None:
    if not features:
        return None
    from tunesmith.evaluation.loss import _sum_loss
    from tunesmith.export.runtime import LogitsAsModel

    total, tokens = _sum_loss(LogitsAsModel(runtime), collator, features, batch_size)
    return total / max(tokens, 1)


def sample_batch(features: list[dict], collator, prompts: list[list[int]], pad_id: int) -> dict:
    """Up to 4 eval rows (right-padded, as in training), else the fixed prompts."""
    import torch

    if features:
        batch = collator(features[:4])
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    width = max(len(p) for p in prompts)
    ids = torch.tensor([p + [pad_id] * (width - len(p)) for p in prompts])
    mask = torch.tensor([[1] * len(p) + [0] * (width - len(p)) for p in prompts])
    return {"input_ids": ids, "attention_mask": mask}


def max_logit_diff(runtime, batch: dict, reference) -> float:
    """Largest |logit difference| at real (unpadded) positions."""
    logits = runtime.logits(batch["input_ids"], batch["attention_mask"])
    real = batch["attention_mask"].bool()
    return float((logits[real] - reference[real]).abs().max())


def model_bytes(model) -> int:
    """Bytes of the distinct tensors of a PyTorch model (tied weights counted once)."""
    seen, total = set(), 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total


def encoder_speed(runtime, batches: list[dict]) -> dict:
    """One forward pass per prompt (batch 1), after one warm-up: latency and input tokens/s."""
    runtime.outputs(batches[0])
    seconds = []
    for batch in batches:
        start = time.perf_counter()
        runtime.outputs(batch)
        seconds.append(time.perf_counter() - start)
    ordered = sorted(seconds)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    return {"prompts": len(batches), "new_tokens_per_prompt": 0,
            "latency_p50_s": round(statistics.median(ordered), 4),
            "latency_p95_s": round(_percentile(ordered, 0.95), 4),
            "tokens_per_s": round(tokens / sum(seconds), 2)}  # prompt tokens read: an encoder writes none


def output_diffs(runtime, batch: dict, reference) -> list[float]:
    """Per row, the largest |difference| from `reference` at real (unpadded) positions."""
    out = runtime.outputs(batch)
    diff = (out - reference).abs()
    if diff.dim() == 3:  # hidden states: [rows, positions, width]; padding positions do not count
        diff = diff.amax(-1) * batch["attention_mask"]
    return diff.reshape(len(diff), -1).amax(-1).tolist()
