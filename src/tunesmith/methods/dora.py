"""DoRA (Liu et al. 2024): LoRA on the direction of each weight plus a learned magnitude."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.methods import register_method
from tunesmith.methods.lora import Lora, LoraConfig


class DoraConfig(LoraConfig):
    name: Literal["dora"] = "dora"
    use_dora: bool = Field(True, description="DoRA: learn magnitude and direction separately.")


@register_method
class Dora(Lora):
    config_class = DoraConfig
    summary = "weight-decomposed LoRA: low-rank direction + learned magnitude"
