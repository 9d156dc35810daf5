"""Full fine-tuning: every weight trains."""

from __future__ import annotations

from typing import Literal

from tunesmith.config.components import MethodConfig
from tunesmith.methods import FULL_LR, Method, register_method


class FullConfig(MethodConfig):
    name: Literal["full"] = "full"


@register_method
class Full(Method):
    config_class = FullConfig
    summary = "update every weight of the model"
    mergeable, saves_adapter = False, False
    trains_every_weight = True
    base_learning_rate = FULL_LR

    def apply(self, model, cfg: FullConfig):
        for p in model.parameters():
            p.requires_grad_(True)
        return model
