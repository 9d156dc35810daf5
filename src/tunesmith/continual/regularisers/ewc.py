"""EWC (Kirkpatrick et al., 2017): like L2-SP, each weight pulled in proportion to how much the
earlier task's loss depends on it, the diagonal of the Fisher information.

F is estimated at the starting weights on `fisher_rows` training rows of the earlier run (one row
per backward pass: the mean squared per-example gradient, the empirical Fisher), normalised to a
mean of 1 so that `strength` reads like L2-SP's, and stored with the run
(continual/ewc_fisher.safetensors). penalty = strength / 2 * sum F * (theta - theta0)^2.
Extra memory: two copies of the trained parameters (theta0, F). Extra time: `fisher_rows`
forward+backward passes before training, then one pass over the trained parameters per step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from tunesmith.config.components import RegulariserConfig
from tunesmith.continual.regularisers import Regulariser, register_regulariser, trainable
from tunesmith.continual.regularisers.l2sp import anchored_penalty
from tunesmith.utils.io import atomic_path

if TYPE_CHECKING:
    import torch

MODEL_INPUTS = ("input_ids", "attention_mask", "labels", "token_type_ids")


class EWCConfig(RegulariserConfig):
    name: Literal["ewc"] = "ewc"
    strength: float = Field(1.0, ge=0, description="Weight of the Fisher-weighted pull toward the starting weights.")
    fisher_rows: int = Field(32, gt=0, description="Earlier training rows the diagonal Fisher is estimated on.")


def diagonal_fisher(model, features: list[dict]) -> list[torch.Tensor]:
    """Mean squared gradient of each trained parameter over the rows, one row at a time."""
    import torch

    params = [p for _, p in trainable(model)]
    fisher = [torch.zeros_like(p) for p in params]
    was_training = model.training
    model.eval()  # no dropout: the Fisher of the weights as they are
    for row in features:
        batch = {k: torch.tensor([row[k]]) for k in MODEL_INPUTS if k in row}
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        for f, p in zip(fisher, params):
            if p.grad is not None:
                f += p.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return [f / max(len(features), 1) for f in fisher]


@register_regulariser
class EWC(Regulariser):
    config_class = EWCConfig
    summary = "elastic weight consolidation: pull weighted by the earlier task's diagonal Fisher"
    memory = "two copies of the trained parameters (theta0 and the Fisher diagonal)"
    time = "fisher_rows forward+backward passes before training; one pass over the trained parameters per step"

    def anchor(self, model, cfg: EWCConfig, context):
        import torch
        from safetensors.torch import save_file

        named = trainable(model)
        fisher = diagonal_fisher(model, context.old_features(cfg.fisher_rows))
        mean = torch.cat([f.flatten() for f in fisher]).mean().clamp_min(1e-30)
        fisher = [f / mean for f in fisher]
        (context.run_dir / "continual").mkdir(exist_ok=True)
        with atomic_path(context.run_dir / "continual" / "ewc_fisher.safetensors") as tmp:
            save_file({n: f.contiguous() for (n, _), f in zip(named, fisher)}, str(tmp))
        params = [p for _, p in named]
        return anchored_penalty(params, [p.detach().clone() for p in params], fisher, cfg.strength)
