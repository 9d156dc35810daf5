"""SimPO (TRL's CPO trainer with loss_type=simpo): length-normalised reward with a target margin,
no reference model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.tasks import TrainerParts, register_task
from tunesmith.tasks.dpo import dataset
from tunesmith.tasks.preference import build_pair_features, causal_lm_class, no_collator, score_pairs


class SimpoConfig(TaskConfig):
    name: Literal["simpo"] = "simpo"
    beta: float = Field(2.0, gt=0, description="Reward scale (the SimPO paper uses 2.0-2.5).")
    gamma: float = Field(0.5, ge=0, description="Target reward margin, as a share of beta (simpo_gamma).")
    sft_weight: float = Field(0.0, ge=0, description="Add this much SFT loss on chosen replies (CPO-SimPO).")


def make_trainer(parts: TrainerParts):
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    cfg = parts.config.task
    args = parts.arguments(CPOConfig, loss_type="simpo", beta=cfg.beta, simpo_gamma=cfg.gamma,
                           cpo_alpha=cfg.sft_weight, max_length=parts.config.data.cutoff_len)
    return CPOTrainer(model=parts.model, args=args, train_dataset=dataset(parts.train),
                      eval_dataset=dataset(parts.eval), processing_class=parts.tokenizer, callbacks=parts.callbacks)


@register_task(SimpoConfig, "SimPO: reference-free, length-normalised preference optimisation (TRL CPO)",
               model_class=causal_lm_class, collator=no_collator, data_format="rows",
               make_trainer=make_trainer, predict=score_pairs)
def build_features(records: list[dict], tokenizer, config):
    return build_pair_features(records, tokenizer, config)
