"""ORPO (odds-ratio preference optimisation; TRL experimental): SFT and preference in one loss,
no reference model at all."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.tasks import TrainerParts, register_task
from tunesmith.tasks.dpo import dataset
from tunesmith.tasks.preference import build_pair_features, causal_lm_class, no_collator, score_pairs


class OrpoConfig(TaskConfig):
    name: Literal["orpo"] = "orpo"
    beta: float = Field(0.1, gt=0, description="Weight of the odds-ratio term against the SFT loss (ORPO's lambda).")


def make_trainer(parts: TrainerParts):
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    args = parts.arguments(ORPOConfig, beta=parts.config.task.beta, max_length=parts.config.data.cutoff_len)
    return ORPOTrainer(model=parts.model, args=args, train_dataset=dataset(parts.train),
                       eval_dataset=dataset(parts.eval), processing_class=parts.tokenizer, callbacks=parts.callbacks)


@register_task(OrpoConfig, "odds-ratio preference optimisation, no reference model (TRL)",
               model_class=causal_lm_class, collator=no_collator, data_format="rows",
               make_trainer=make_trainer, predict=score_pairs)
def build_features(records: list[dict], tokenizer, config):
    return build_pair_features(records, tokenizer, config)
