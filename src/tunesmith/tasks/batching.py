"""Forward passes over many encoded rows in batches, with a progress bar (predict helpers)."""

from __future__ import annotations

from tunesmith.utils.progress import progress


def batched_outputs(model, collate, features: list[dict], batch_size: int, label: str = "predict"):
    """Yield (start index, model output) for each batch of `features`, without gradients."""
    import torch

    device = next(model.parameters()).device
    with progress(label, len(features)) as advance, torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = collate(features[start:start + batch_size])
            batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
            yield start, model(**batch)
            advance(len(batch["input_ids"]))


def batched_logits(model, collate, features: list[dict], batch_size: int):
    """The stacked `logits` of every row (float32, on the CPU)."""
    import torch

    parts = [out.logits.float().cpu() for _, out in batched_outputs(model, collate, features, batch_size)]
    return torch.cat(parts) if parts else torch.empty(0)


def continuation_logps(model, tokenizer, pairs: list[tuple[list[int], list[int]]], batch_size: int,
                       cutoff: int | None = None, label: str = "score") -> tuple[list[float], list[int]]:
    """Summed log-probability of each continuation after its prompt (token ids), and its length.

    Rows are batched shortest first, so a batch pads to rows of about its own length, and the
    log-softmax is taken only where a continuation token is scored (in chunks): over a whole
    padded batch it is a (rows x length x vocabulary) float tensor, gigabytes for a 49k vocabulary."""
    from tunesmith.data.tokenize import IGNORE
    from tunesmith.tasks.collate import CausalLMCollator

    features = []
    for prompt, reply in pairs:
        ids, labels = prompt + reply, [IGNORE] * len(prompt) + reply
        features.append({"input_ids": ids[:cutoff], "labels": labels[:cutoff]})
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    ordered = [features[i] for i in order]
    collate = CausalLMCollator(tokenizer)
    sums, counts = [0.0] * len(features), [0] * len(features)
    for start, out in batched_outputs(model, collate, ordered, batch_size, label):
        labels = collate(ordered[start:start + batch_size])["labels"][:, 1:].to(out.logits.device)
        for row, (total, n) in enumerate(zip(*_scored_logps(out.logits[:, :-1], labels, IGNORE))):
            sums[order[start + row]], counts[order[start + row]] = total, n
    return sums, counts


def _scored_logps(logits, labels, ignore: int, chunk: int = 1024) -> tuple[list[float], list[int]]:
    """Per row: the summed log-probability of its labelled tokens, and how many there are."""
    import torch
    import torch.nn.functional as F

    mask = labels != ignore
    rows = mask.nonzero()[:, 0]
    picked, targets = logits[mask], labels[mask]
    logps = torch.cat([-F.cross_entropy(picked[i:i + chunk].float(), targets[i:i + chunk], reduction="none")
                       for i in range(0, len(targets), chunk)]) if len(targets) else torch.zeros(0)
    sums = torch.zeros(len(labels), dtype=torch.float64).index_add_(0, rows.cpu(), logps.double().cpu())
    return sums.tolist(), mask.sum(-1).tolist()
