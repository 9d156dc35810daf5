"""GaLore (Zhao et al. 2024): full-parameter training whose optimizer state lives in a low-rank
projection of each weight's gradient. transformers runs it as `optim=galore_adamw` with the
`galore-torch` package; it works on a CPU. Every weight trains and the whole model is saved."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.errors import ConfigError
from tunesmith.methods import Method, register_method


class GaloreConfig(MethodConfig):
    name: Literal["galore"] = "galore"
    target_modules: list[str] = Field(
        default_factory=lambda: ["attn", "mlp"],
        description="Linear modules whose gradients are projected (names containing these "
        "strings, or full-match regexes); the rest train with plain AdamW.")
    rank: int = Field(128, gt=0, description="Rank of the gradient projection (paper: 128-512).")
    update_proj_gap: int = Field(200, gt=0, description="Recompute the projection every N steps.")
    scale: float = Field(0.25, gt=0, description="Scale of the projected update (paper: 0.25).")
    proj_type: Literal["std", "reverse_std", "left", "right", "full"] = Field(
        "std", description="Which side of the gradient is projected.")
    optimizer: Literal["adamw", "adafactor"] = Field(
        "adamw", description="Optimizer around the projection; replaces train.optimizer.")


@register_method
class Galore(Method):
    config_class = GaloreConfig
    summary = "full training with low-rank projected optimizer state (GaLore)"
    mergeable, saves_adapter = False, False
    heads = ("causal-lm",)  # default targets name decoder-LLM modules
    trains_every_weight = True

    def unavailable(self) -> str | None:
        from transformers.utils import is_galore_torch_available

        if not is_galore_torch_available():
            return "method galore needs the galore-torch package: pip install galore-torch bitsandbytes"
        return None

    def training_args(self, cfg: GaloreConfig) -> dict:
        optim_args = (f"rank={cfg.rank},update_proj_gap={cfg.update_proj_gap},scale={cfg.scale},"
                      f"proj_type={cfg.proj_type}")
        return {"optim": f"galore_{cfg.optimizer}", "optim_target_modules": cfg.target_modules,
                "optim_args": optim_args}

    def apply(self, model, cfg: GaloreConfig):
        import torch
        from transformers.trainer_utils import check_target_module_exists

        reason = self.unavailable()
        if reason:
            raise ConfigError(reason)
        linear = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
        if not any(check_target_module_exists(cfg.target_modules, n) for n in linear):
            tails = sorted({n.split(".")[-1] for n in linear} | {n.split(".")[-2] for n in linear if "." in n})
            raise ConfigError(f"method.target_modules {cfg.target_modules} match no linear module; "
                              f"names in this model include: {', '.join(tails)}")
        for p in model.parameters():
            p.requires_grad_(True)
        return model
