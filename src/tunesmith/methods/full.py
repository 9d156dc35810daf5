"""Full fine-tuning: every weight trains."""

from __future__ import annotations

from typing import Literal

from tunesmith.config.components import MethodConfig
from tunesmith.methods import register_method


class FullConfig(MethodConfig):
    name: Literal["full"] = "full"


@register_method(FullConfig, "update every weight of the model", mergeable=False, saves_adapter=False)
def apply(model, cfg: FullConfig):
    for p in model.parameters():
        p.requires_grad_(True)
    return model
