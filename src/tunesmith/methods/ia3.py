"""IA3 (Liu et al. 2022): learned vectors that rescale keys, values and feed-forward activations."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.methods import Method, register_method
from tunesmith.methods.lora import peft_task_type, wrap_with_peft


class Ia3Config(MethodConfig):
    name: Literal["ia3"] = "ia3"
    target_modules: list[str] | None = Field(
        None, description="Modules to rescale (default: PEFT's choice for the architecture, "
        "e.g. k_proj, v_proj, down_proj on llama).")
    feedforward_modules: list[str] | None = Field(
        None, description="Which of target_modules are feed-forward (scaled on the input); "
        "default: PEFT's choice for the architecture.")


@register_method
class Ia3(Method):
    config_class = Ia3Config
    summary = "learned rescaling vectors on keys, values and FFN (IA3)"
    mergeable, saves_adapter = True, True

    def apply(self, model, cfg: Ia3Config):
        from peft import IA3Config

        peft_config = IA3Config(target_modules=cfg.target_modules,
                                feedforward_modules=cfg.feedforward_modules,
                                task_type=peft_task_type(model))
        return wrap_with_peft(model, peft_config)
