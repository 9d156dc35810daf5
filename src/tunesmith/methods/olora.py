"""OLoRA (Büyükakyüz 2024): LoRA initialised from a QR decomposition of each weight (orthonormal A).
Saved adapters are converted to plain LoRA for the original base."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.methods import register_method
from tunesmith.methods.lora import CONVERTIBLE_HEADS, Lora, LoraConfig


class OloraConfig(LoraConfig):
    name: Literal["olora"] = "olora"
    init: Literal["default", "gaussian", "pissa", "olora"] = Field(
        "olora", description="Initialisation (olora: QR decomposition of W).")


@register_method
class Olora(Lora):
    config_class = OloraConfig
    summary = "LoRA initialised orthonormally from a QR of the weights (OLoRA)"
    heads = CONVERTIBLE_HEADS
