"""Reward modelling: a scalar head scores a reply; trained so chosen replies outscore rejected ones
(pairwise Bradley-Terry loss, TRL's RewardTrainer). Eval logs pair accuracy (eval_accuracy) and
the mean score margin (eval_margin). Same pair layouts as DPO (tasks/preference.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.tasks import TrainerParts, register_task
from tunesmith.tasks.heads import train_task_head
from tunesmith.tasks.preference import build_pair_features, check_pair, no_collator, preference_trainer, read_pairs
from tunesmith.tasks.rows import RowsReport


class RewardConfig(TaskConfig):
    name: Literal["reward"] = "reward"
    center_rewards: float | None = Field(
        None, ge=0, description="Weight of a penalty that keeps scores centred on zero (None: off).")


def model_class():
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification


def model_kwargs(config, tokenizer) -> dict:
    return {"num_labels": 1, "pad_token_id": tokenizer.pad_token_id, "ignore_mismatched_sizes": True}


def make_trainer(parts: TrainerParts):
    train_task_head(parts.model)  # freeze tuning must not freeze the fresh head
    from trl import RewardConfig as TrlRewardConfig
    from trl import RewardTrainer

    return preference_trainer(parts, TrlRewardConfig, RewardTrainer,
                              center_rewards_coefficient=parts.config.task.center_rewards)


def predict(model, tokenizer, records: list[dict], config, batch_size: int = 16) -> tuple[list[dict], dict]:
    """The score of each reply of each pair, and whether the chosen one scores higher."""
    from tunesmith.tasks.batching import batched_logits
    from tunesmith.tasks.classification import collator, encode

    kept = read_pairs(records, tokenizer, config, RowsReport())
    cut = config.data.cutoff_len

    def scores(key):
        encoded = [encode(tokenizer, p["prompt"] + p[key], None, cut) for _, p in kept]
        return batched_logits(model, collator(tokenizer), encoded, batch_size)[:, 0].tolist() if kept else []

    chosen, rejected = scores("chosen"), scores("rejected")
    rows = [{"origin": r.get("_origin"), "prompt": p["prompt"], "chosen_score": c, "rejected_score": s,
             "prefers_chosen": c > s} for (r, p), c, s in zip(kept, chosen, rejected)]
    if not rows:
        return rows, {}
    margins = [c - s for c, s in zip(chosen, rejected)]
    return rows, {"pair_accuracy": sum(m > 0 for m in margins) / len(rows), "margin": sum(margins) / len(rows)}


@register_task(RewardConfig, "reward model: pairwise scoring of chosen vs rejected replies (TRL)",
               model_class=model_class, collator=no_collator, data_format="rows", model_kwargs=model_kwargs,
               make_trainer=make_trainer, predict=predict, check_row=check_pair)
def build_features(records: list[dict], tokenizer, config):
    return build_pair_features(records, tokenizer, config)
