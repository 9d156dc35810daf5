"""Direct preference optimisation (TRL's DPOTrainer) on chosen/rejected pairs.

With LoRA the reference policy is the base model with the adapters switched off: no second
model in memory. With full or freeze tuning TRL keeps a frozen copy as the reference.
Eval logs TRL's reward accuracy (eval_rewards/accuracies) and margin (eval_rewards/margins).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.tasks import TrainerParts
from tunesmith.tasks.preference import preference_trainer, register_preference_task

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


@register_preference_task(DpoConfig, "direct preference optimisation on chosen/rejected pairs (TRL)")
def make_trainer(parts: TrainerParts):
    from trl import DPOConfig, DPOTrainer

    cfg = parts.config.task
    return preference_trainer(parts, DPOConfig, DPOTrainer, beta=cfg.beta, loss_type=list(cfg.loss_type),
                              loss_weights=cfg.loss_weights, label_smoothing=cfg.label_smoothing,
                              truncation_mode="keep_start", dataset_num_proc=None)
