"""P-tuning v2 (Liu et al. 2022): deep prompts, i.e. trained key/value prompts in every layer,
trained directly without a reparameterisation MLP. In PEFT this is PrefixTuningConfig with
`prefix_projection=False`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.methods import Method, register_method
from tunesmith.methods.lora import peft_task_type, wrap_with_peft


class PTuningV2Config(MethodConfig):
    name: Literal["p-tuning-v2"] = "p-tuning-v2"
    num_virtual_tokens: int = Field(20, gt=0, description="Prompt length in every layer.")


@register_method
class PTuningV2(Method):
    config_class = PTuningV2Config
    summary = "deep prompts: trained key/value prompts in every layer (PEFT)"
    mergeable, saves_adapter = False, True

    def apply(self, model, cfg: PTuningV2Config):
        from peft import PrefixTuningConfig as PeftPrefixConfig

        peft_config = PeftPrefixConfig(num_virtual_tokens=cfg.num_virtual_tokens,
                                       prefix_projection=False, task_type=peft_task_type(model))
        return wrap_with_peft(model, peft_config, option="method.name")
