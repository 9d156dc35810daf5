"""Prefix tuning (Li & Liang 2021): trained key/value prefixes in every layer, produced by a small
MLP over a prefix embedding (the reparameterisation the paper uses for stable training).
After training PEFT saves the MLP's output, so inference needs no MLP."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.methods import Method, register_method
from tunesmith.methods.lora import peft_task_type, wrap_with_peft


class PrefixTuningConfig(MethodConfig):
    name: Literal["prefix-tuning"] = "prefix-tuning"
    num_virtual_tokens: int = Field(20, gt=0, description="Prefix length (virtual tokens per layer).")
    encoder_hidden_size: int = Field(512, gt=0, description="Hidden size of the reparameterisation MLP.")


@register_method
class PrefixTuning(Method):
    config_class = PrefixTuningConfig
    summary = "trained key/value prefixes in every layer, via an MLP (PEFT)"
    mergeable, saves_adapter = False, True

    def apply(self, model, cfg: PrefixTuningConfig):
        from peft import PrefixTuningConfig as PeftPrefixConfig

        peft_config = PeftPrefixConfig(
            num_virtual_tokens=cfg.num_virtual_tokens, prefix_projection=True,
            encoder_hidden_size=cfg.encoder_hidden_size, task_type=peft_task_type(model),
        )
        return wrap_with_peft(model, peft_config, option="method.name")
