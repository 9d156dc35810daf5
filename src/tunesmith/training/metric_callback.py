"""Registered metrics inside training: generation on a fixed eval sample at every evaluation,
and early stopping / best-checkpoint choice on any score with its direction."""

from __future__ import annotations

import math
import random
from pathlib import Path

from transformers import TrainerCallback

from tunesmith.data.examples import to_example
from tunesmith.errors import ConfigError
from tunesmith.metrics import METRICS
from tunesmith.metrics.runner import (
    compute_metrics,
    greater_is_better,
    parse_metric_names,
    scored_on_generations,
)
from tunesmith.runs.rundir import RunDir
from tunesmith.tasks import TASKS
from tunesmith.training.callbacks import EarlyStoppingCallback

SEED_OFFSET = 7  # the sample differs from the train/eval split's shuffle but is fixed for a run


def resolve_best_metric(config) -> tuple[str, bool]:
    """("eval_<key>", greater_is_better) for eval.best_metric; an unknown score fails before training."""
    e = config.eval
    bare = (e.best_metric or "eval_loss").removeprefix("eval_")
    names = parse_metric_names(e.metrics)
    if bare not in ("loss", "perplexity") and not any(bare.startswith(n) for n in names):
        registered = [s for s in METRICS if bare.startswith(s.name)]
        # Scores of generated text exist only if eval.metrics asks for them; others (labels,
        # logits) may come from the task's own evaluation, so they are trusted.
        if (registered and registered[0].inputs == "text") or (not registered and e.greater_is_better is None):
            raise ConfigError(
                f"eval.best_metric {e.best_metric!r} is not a score of eval.metrics ({', '.join(names) or 'none'}); "
                "add the metric that produces it, e.g. eval.metrics=[rouge] for rougeL"
            )
    greater = e.greater_is_better if e.greater_is_better is not None else greater_is_better(bare, names)
    return f"eval_{bare}", greater


def best_model_arguments(config, has_eval: bool) -> dict:
    """TrainingArguments that make the Trainer track (and optionally restore) the best checkpoint."""
    if not has_eval:
        return {}
    key, greater = resolve_best_metric(config)
    out = {"metric_for_best_model": key, "greater_is_better": greater}
    if config.eval.load_best_at_end:  # transformers needs a checkpoint at every evaluation for this
        out.update(load_best_model_at_end=True, save_strategy="steps" if config.eval.steps else "epoch",
                   save_steps=config.eval.steps or config.train.save_steps)
    return out


def _generation_metrics(config) -> list[str]:
    """The eval.metrics this callback computes: those scoring generated text, when the task's
    model generates (label metrics of a classification head are the task's own business)."""
    names = scored_on_generations(parse_metric_names(config.eval.metrics))
    if TASKS.get(config.task.name).model_class().__name__ == "AutoModelForCausalLM":
        return names
    text = [n for n in names if METRICS.get(n).inputs == "text"]
    if text:
        raise ConfigError(f"eval.metrics {', '.join(text)} score generated text, but task {config.task.name} "
                          "does not generate; use the task's own metrics")
    return []


class GenerationMetricsCallback(TrainerCallback):
    """At each evaluation: generate replies for a fixed sample of eval rows, score them with the
    configured metrics, and add eval_<score> to the evaluation's metrics (which early stopping and
    best-checkpoint choice read) and to the run's metrics.jsonl."""

    def __init__(self, run: RunDir, config, tokenizer, eval_records: list[dict]):
        self.run, self.config, self.tokenizer = run, config, tokenizer
        self.metrics = _generation_metrics(config)
        self.perplexity = TASKS.get(config.task.name).lm_loss
        chats = [to_example(r) for r in eval_records if "messages" in r]
        rng = random.Random(config.train.seed + SEED_OFFSET)
        self.examples = rng.sample(chats, min(config.eval.metric_rows, len(chats)))

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kw):
        if metrics is None:
            return
        if "eval_loss" in metrics and self.perplexity:
            metrics["eval_perplexity"] = math.exp(min(metrics["eval_loss"], 50))
        if not self.metrics or not self.examples or model is None:
            return
        scores = self._score(model)
        metrics.update({f"eval_{k}": v for k, v in scores.items()})
        self.run.log_metrics({"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                              **{f"eval_{k}": v for k, v in scores.items()}})

    def _score(self, model) -> dict:
        from tunesmith.data.templates import get_template
        from tunesmith.inference.generate import generate_replies
        from tunesmith.inference.load import Loaded

        was_training = model.training
        model.eval()
        loaded = Loaded(model, self.tokenizer, get_template(self.config.data.template, self.tokenizer), self.config)
        replies = generate_replies(loaded, [e.messages for e in self.examples], self.config.eval.max_new_tokens,
                                   self.config.eval.batch_size, tools=[e.tools for e in self.examples])
        if was_training:
            model.train()
        return compute_metrics(self.metrics, self.examples, replies, None, self.config.eval.metric_options).scores

    def on_train_end(self, args, state, control, **kw):
        if state.best_metric is None:
            return
        key, checkpoint = args.metric_for_best_model, state.best_model_checkpoint
        key = key if key.startswith("eval_") else f"eval_{key}"
        step = state.best_global_step
        where = f" at step {step}" if step else ""
        if checkpoint:
            where += f" ({Path(checkpoint).name})"
        self.run.event("best_checkpoint", f"best {key} {state.best_metric:.4f}{where}", metric=key,
                       value=state.best_metric, step=step, checkpoint=checkpoint)


def evaluation_callbacks(config, run: RunDir, tokenizer, eval_records: list[dict]) -> list[TrainerCallback]:
    """The metric callback (first, so the scores exist) and early stopping on eval.best_metric."""
    if not eval_records:
        return []
    callbacks: list[TrainerCallback] = [GenerationMetricsCallback(run, config, tokenizer, eval_records)]
    if config.eval.early_stopping_patience:
        key, greater = resolve_best_metric(config)
        callbacks.append(EarlyStoppingCallback(config.eval.early_stopping_patience, key, greater))
    return callbacks
