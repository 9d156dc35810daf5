"""SimPO (TRL's CPO trainer with loss_type=simpo): length-normalised reward with a target margin,
no reference model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.tasks import TrainerParts
from tunesmith.tasks.preference import preference_trainer, register_preference_task


class SimpoConfig(TaskConfig):
    name: Literal["simpo"] = "simpo"
    beta: float = Field(2.0, gt=0, description="Reward scale (the SimPO paper uses 2.0-2.5).")
    gamma: float = Field(0.5, ge=0, description="Target reward margin, as a share of beta (simpo_gamma).")
    sft_weight: float = Field(0.0, ge=0, description="Add this much SFT loss on chosen replies (CPO-SimPO).")


@register_preference_task(SimpoConfig, "SimPO: reference-free, length-normalised preference optimisation (TRL CPO)")
def make_trainer(parts: TrainerParts):
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    cfg = parts.config.task
    return preference_trainer(parts, CPOConfig, CPOTrainer, loss_type="simpo", beta=cfg.beta,
                              simpo_gamma=cfg.gamma, cpo_alpha=cfg.sft_weight)
