"""Teacher-forced scoring: each row's summed negative log-likelihood on its trainable tokens."""

from __future__ import annotations

from tunesmith.data.examples import Example
from tunesmith.tasks import TASKS
from tunesmith.utils.progress import progress


def row_nll(loaded, examples: list[Example], batch_size: int = 8) -> list[dict]:
    """One {"nll", "tokens"} per example; rows with nothing to score get tokens 0."""
    import torch
    import torch.nn.functional as F

    task = TASKS.get(loaded.config.task.name)
    scorable = [(i, f) for i, e in enumerate(examples) for f in _features(task, e.record, loaded)]
    out = [{"nll": 0.0, "tokens": 0} for _ in examples]
    collate = task.collator(loaded.tokenizer)
    with progress("score", len(scorable)) as advance, torch.no_grad():
        for start in range(0, len(scorable), batch_size):
            chunk = scorable[start:start + batch_size]
            batch = collate([f for _, f in chunk])
            logits = loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            losses = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), labels,
                                     ignore_index=-100, reduction="none")
            for (i, _), loss, lab in zip(chunk, losses, labels):
                out[i]["nll"] += float(loss.sum())  # a long text may span several blocks
                out[i]["tokens"] += int((lab != -100).sum())
            advance(len(chunk))
    return out


def _features(task, record: dict, loaded) -> list[dict]:
    # Plain-text rows (a general corpus for forgetting checks) are scored by the task that reads
    # plain text (continued pretraining).
    if "messages" not in record:
        task = next((t for t in TASKS if t.reads == "text"), task)
    features, _ = task.build_features([record], loaded.tokenizer, loaded.config)
    return features
