"""LoRA+ (Hayou et al. 2024): B trains with a learning rate `lr_ratio` times that of A.

The adapter is a plain LoRA; only the optimizer differs, so this method brings its own
optimizer (PEFT's `create_loraplus_optimizer`) that the trainer calls instead of its default one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.methods import register_method
from tunesmith.methods.lora import Lora, LoraConfig


class LoraPlusConfig(LoraConfig):
    name: Literal["loraplus"] = "loraplus"
    lr_ratio: float = Field(16.0, ge=1, description="Learning rate of B over that of A (paper: 16).")
    lr_embedding: float = Field(1e-6, gt=0, description="Learning rate of LoRA on embedding layers.")


@register_method
class LoraPlus(Lora):
    config_class = LoraPlusConfig
    summary = "LoRA with a larger learning rate for B (LoRA+)"

    def optimizer(self, model, cfg: LoraPlusConfig, optimizer_cls, optimizer_kwargs, args):
        from peft.optimizers import create_loraplus_optimizer

        kwargs = dict(optimizer_kwargs)
        lr = kwargs.pop("lr")
        return create_loraplus_optimizer(
            model, optimizer_cls, lr=lr, loraplus_lr_ratio=cfg.lr_ratio,
            loraplus_lr_embedding=cfg.lr_embedding, loraplus_weight_decay=args.weight_decay, **kwargs)
