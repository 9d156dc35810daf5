"""Eval loss and perplexity of a run or model on a data file."""

from __future__ import annotations

import math
from pathlib import Path

from tunesmith.data.load import load_records
from tunesmith.data.records import require_rows
from tunesmith.errors import ConfigError
from tunesmith.inference.load import load_for_inference
from tunesmith.tasks import TASKS
from tunesmith.utils.io import write_json
from tunesmith.utils.progress import progress


def evaluate_loss(run_or_model: str, data: str, output: str | None = None, batch_size: int = 8) -> dict:
    """Token-weighted mean loss over the trainable tokens of `data`, and its perplexity."""
    loaded = load_for_inference(run_or_model)
    config = loaded.config
    task = TASKS.get(config.task.name)
    if task.predict is not None:  # classification, QA, preference ...: scored by the task, not by LM loss
        raise ConfigError(f"task {task.name!r} is scored by predict: tunesmith predict {run_or_model} "
                          f"--input {data} --output predictions.jsonl (writes the scores beside it)")
    records, _ = load_records([data], config.data.format, config.data.on_bad_row)
    features, _ = task.build_features(require_rows(records, data), loaded.tokenizer, config)
    total_loss, total_tokens = _sum_loss(loaded.model, task.collator(loaded.tokenizer), features, batch_size)
    loss = total_loss / max(total_tokens, 1)
    report = {
        "model": run_or_model, "data": data, "rows": len(features), "tokens": total_tokens,
        "eval_loss": loss, "eval_perplexity": math.exp(min(loss, 50)),
    }
    out_dir = Path(output) if output else Path(run_or_model) / "eval" if Path(run_or_model).is_dir() else Path("eval")
    write_json(out_dir / "report.json", report)
    report["report_path"] = str(out_dir / "report.json")
    return report


def _sum_loss(model, collator, features: list[dict], batch_size: int) -> tuple[float, int]:
    import torch
    import torch.nn.functional as F

    total, count = 0.0, 0
    with progress("eval", len(features)) as advance, torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = collator(features[start:start + batch_size])
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)).float(), labels.reshape(-1),
                ignore_index=-100, reduction="sum",
            )
            total += loss.item()
            count += int((labels != -100).sum())
            advance(len(batch["input_ids"]))
    return total, count
