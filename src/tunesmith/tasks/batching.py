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
    """Summed log-probability of each continuation after its prompt (token ids), and its length."""
    import torch

    from tunesmith.data.tokenize import IGNORE
    from tunesmith.tasks.collate import CausalLMCollator

    features = []
    for prompt, reply in pairs:
        ids, labels = prompt + reply, [IGNORE] * len(prompt) + reply
        features.append({"input_ids": ids[:cutoff], "labels": labels[:cutoff]})
    collate = CausalLMCollator(tokenizer)
    sums, counts = [], []
    for start, out in batched_outputs(model, collate, features, batch_size, label):
        labels = collate(features[start:start + batch_size])["labels"][:, 1:].to(out.logits.device)
        logps = torch.log_softmax(out.logits[:, :-1].float(), -1)
        mask = labels != IGNORE
        picked = logps.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
        sums += picked.sum(-1).tolist()
        counts += mask.sum(-1).tolist()
    return sums, counts
