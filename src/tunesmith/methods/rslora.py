"""rsLoRA (Kalajdzievski 2023): LoRA scaled by alpha/sqrt(r) so high ranks keep learning."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.methods import register_method
from tunesmith.methods.lora import Lora, LoraConfig


class RsLoraConfig(LoraConfig):
    name: Literal["rslora"] = "rslora"
    use_rslora: bool = Field(True, description="rsLoRA: scale by alpha/sqrt(r), stable at high ranks.")


@register_method
class RsLora(Lora):
    config_class = RsLoraConfig
    summary = "LoRA scaled by alpha/sqrt(r) (rank-stabilised LoRA)"
