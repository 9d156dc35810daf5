"""ORPO (odds-ratio preference optimisation; TRL experimental): SFT and preference in one loss,
no reference model at all."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.tasks import TrainerParts
from tunesmith.tasks.preference import preference_trainer, register_preference_task


class OrpoConfig(TaskConfig):
    name: Literal["orpo"] = "orpo"
    beta: float = Field(0.1, gt=0, description="Weight of the odds-ratio term against the SFT loss (ORPO's lambda).")


@register_preference_task(OrpoConfig, "odds-ratio preference optimisation, no reference model (TRL)")
def make_trainer(parts: TrainerParts):
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return preference_trainer(parts, ORPOConfig, ORPOTrainer, beta=parts.config.task.beta)
