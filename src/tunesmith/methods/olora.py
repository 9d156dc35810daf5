"""OLoRA (Büyükakyüz 2024): LoRA initialised from a QR decomposition of each weight (orthonormal A).
Saved adapters are converted to plain LoRA for the original base."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.methods import register_method
from tunesmith.methods.lora import CONVERTIBLE_HEADS, LoraConfig, apply_lora, save_lora


class OloraConfig(LoraConfig):
    name: Literal["olora"] = "olora"
    init: Literal["default", "gaussian", "pissa", "olora"] = Field(
        "olora", description="Initialisation (olora: QR decomposition of W).")


@register_method(OloraConfig, "LoRA initialised orthonormally from a QR of the weights (OLoRA)",
                 mergeable=True, saves_adapter=True, save=save_lora,
                 heads=CONVERTIBLE_HEADS)
def apply(model, cfg: OloraConfig):
    return apply_lora(model, cfg)
