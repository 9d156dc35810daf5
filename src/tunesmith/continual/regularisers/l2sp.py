"""L2-SP (Li et al., 2018): pull the trained weights toward their starting point.

penalty = strength / 2 * sum (theta - theta0)^2 over the trained parameters, theta0 being the
weights training starts from (model.from_run's adapter, or its full weights).
Extra memory: one copy of the trained parameters (theta0). Extra time: one pass over them per
step (negligible beside the forward/backward).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import RegulariserConfig
from tunesmith.continual.regularisers import Regulariser, register_regulariser, trainable


class L2SPConfig(RegulariserConfig):
    name: Literal["l2-sp"] = "l2-sp"
    strength: float = Field(1.0, ge=0, description="Weight of the pull toward the starting weights (alpha).")


def anchored_penalty(params: list, anchors: list, weights: list | None, strength: float):
    """strength/2 * sum w * (theta - theta0)^2, the common form of L2-SP (w = 1) and EWC (w = Fisher)."""

    def penalty(model):
        total = 0.0
        for i, (p, p0) in enumerate(zip(params, anchors)):
            d = (p - p0) ** 2
            total = total + (d * weights[i]).sum() if weights is not None else total + d.sum()
        return strength / 2 * total

    return penalty


@register_regulariser
class L2SP(Regulariser):
    config_class = L2SPConfig
    summary = "pull toward the starting weights: strength/2 * ||theta - theta0||^2"
    memory = "one copy of the trained parameters"
    time = "one pass over the trained parameters per step"

    def anchor(self, model, cfg: L2SPConfig, context):
        params = [p for _, p in trainable(model)]
        return anchored_penalty(params, [p.detach().clone() for p in params], None, cfg.strength)
