"""PiSSA (Meng et al. 2024): LoRA initialised from the principal singular vectors of each weight;
the base keeps the residual. Saved adapters are converted to plain LoRA for the original base."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.methods import register_method
from tunesmith.methods.lora import CONVERTIBLE_HEADS, Lora, LoraConfig


class PissaConfig(LoraConfig):
    name: Literal["pissa"] = "pissa"
    init: Literal["default", "gaussian", "pissa", "olora"] = Field(
        "pissa", description="Initialisation (pissa: principal singular values and vectors of W).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input (PiSSA uses 0).")


@register_method
class Pissa(Lora):
    config_class = PissaConfig
    summary = "LoRA initialised from the principal singular vectors (PiSSA)"
    heads = CONVERTIBLE_HEADS
