"""Generation-based eval for causal-LM SFT: answer each eval prompt and score it with ROUGE/BLEU.

Works from the tokenized eval features alone: the prompt is every token before the first
trainable one, the reference is the trainable (assistant) tokens. Opt in with
`task.eval_generate: true` (summarisation and similar), since generating is slow.
"""

from __future__ import annotations

from tunesmith.data.tokenize import IGNORE
from tunesmith.tasks import TrainerParts


def prompt_and_reference(feature: dict) -> tuple[list[int], list[int]]:
    labels = feature["labels"]
    first = next(i for i, x in enumerate(labels) if x != IGNORE)
    return list(feature["input_ids"][:first]), [x for x in labels[first:] if x != IGNORE]


def generate_scores(model, tokenizer, features: list[dict], max_new_tokens: int, batch_size: int) -> dict:
    """ROUGE-1/2/L and BLEU of greedy replies to the eval prompts against the eval replies."""
    import torch

    from tunesmith.tasks.text_scores import rouge_bleu

    pairs = [prompt_and_reference(f) for f in features]
    preds, refs = [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            longest = max(len(p) for p, _ in chunk)
            pad = tokenizer.pad_token_id
            ids = torch.tensor([[pad] * (longest - len(p)) + p for p, _ in chunk])  # left padding
            mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p, _ in chunk])
            out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                                 max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                                 eos_token_id=tokenizer.eos_token_id)
            preds += [tokenizer.decode(row[longest:], skip_special_tokens=True).strip() for row in out]
            refs += [tokenizer.decode(r, skip_special_tokens=True).strip() for _, r in chunk]
    model.train(was_training)
    return rouge_bleu(preds, refs)


def make_generating_trainer(parts: TrainerParts):
    """The default causal-LM trainer, plus generated-reply scores at every evaluation when enabled."""
    from tunesmith.tasks import TASKS

    cfg = parts.config.task
    base = parts.trainer_class
    task = TASKS.get(cfg.name)
    if not getattr(cfg, "eval_generate", False):
        return base(model=parts.model, args=parts.arguments(), train_dataset=parts.train,
                    eval_dataset=parts.eval or None, data_collator=task.collator(parts.tokenizer),
                    callbacks=parts.callbacks)
    tokenizer, batch = parts.tokenizer, parts.config.eval.batch_size
    rows = parts.eval[: cfg.eval_generate_rows] if cfg.eval_generate_rows else parts.eval

    class GeneratingTrainer(base):
        def evaluate(self, *args, metric_key_prefix: str = "eval", **kwargs):
            metrics = super().evaluate(*args, metric_key_prefix=metric_key_prefix, **kwargs)
            scores = generate_scores(self.model, tokenizer, rows, cfg.eval_max_new_tokens, batch)
            scores = {f"{metric_key_prefix}_{k}": v for k, v in scores.items()}
            self.log(scores)
            metrics.update(scores)
            return metrics

    return GeneratingTrainer(model=parts.model, args=parts.arguments(), train_dataset=parts.train,
                             eval_dataset=parts.eval or None, data_collator=task.collator(parts.tokenizer),
                             callbacks=parts.callbacks)
