"""Direct preference optimisation (TRL's DPOTrainer) on chosen/rejected pairs.

With LoRA the reference policy is the base model with the adapters switched off: no second
model in memory. With full or freeze tuning TRL keeps a frozen copy as the reference.
Eval logs TRL's reward accuracy (eval_rewards/accuracies) and margin (eval_rewards/margins).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.tasks import TrainerParts, register_task
from tunesmith.tasks.preference import build_pair_features, causal_lm_class, no_collator, score_pairs

LOSSES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
          "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")


class DpoConfig(TaskConfig):
    name: Literal["dpo"] = "dpo"
    beta: float = Field(0.1, gt=0, description="Strength of the pull towards the reference model (DPO's beta).")
    loss_type: list[Literal[LOSSES]] = Field(  # type: ignore[valid-type]
        ["sigmoid"], description="TRL loss(es): sigmoid (DPO), ipo, hinge, robust, ...; several are summed "
        "with loss_weights (e.g. [sigmoid, sft] for RPO-style training).",
    )
    loss_weights: list[float] | None = Field(None, description="Weight of each loss_type (default: all 1).")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="Assumed label noise (cDPO / robust DPO).")


def drop_reference_adapter(model) -> None:
    """TRL copies a PEFT model's adapter as a "ref" adapter; a fresh LoRA equals the base model, so
    we drop the copy and TRL falls back to the base with adapters disabled (no extra weights)."""
    if hasattr(model, "peft_config") and "ref" in model.peft_config:
        model.delete_adapter("ref")
        model.set_adapter("default")


def dataset(rows: list[dict]):
    from datasets import Dataset

    return Dataset.from_list(rows) if rows else None


def make_trainer(parts: TrainerParts):
    from trl import DPOConfig, DPOTrainer

    cfg, data = parts.config.task, parts.config.data
    args = parts.arguments(
        DPOConfig, beta=cfg.beta, loss_type=list(cfg.loss_type), loss_weights=cfg.loss_weights,
        label_smoothing=cfg.label_smoothing, max_length=data.cutoff_len, truncation_mode="keep_start",
        dataset_num_proc=None,
    )
    trainer = DPOTrainer(
        model=parts.model, args=args, train_dataset=dataset(parts.train), eval_dataset=dataset(parts.eval),
        processing_class=parts.tokenizer, callbacks=parts.callbacks,
    )
    drop_reference_adapter(trainer.model)
    return trainer


@register_task(DpoConfig, "direct preference optimisation on chosen/rejected pairs (TRL)",
               model_class=causal_lm_class, collator=no_collator, data_format="rows",
               make_trainer=make_trainer, predict=score_pairs)
def build_features(records: list[dict], tokenizer, config):
    return build_pair_features(records, tokenizer, config)
