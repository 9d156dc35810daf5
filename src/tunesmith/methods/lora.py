"""LoRA (PEFT): low-rank updates beside frozen weights."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.errors import ConfigError
from tunesmith.methods import register_method


class LoraConfig(MethodConfig):
    name: Literal["lora"] = "lora"
    r: int = Field(16, gt=0, description="Rank of the update matrices.")
    alpha: float = Field(32, gt=0, description="Scaling numerator: updates are scaled by alpha/r.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | str = Field(
        "all-linear",
        description="Module names to adapt (e.g. [q_proj, v_proj]) or 'all-linear'.",
    )


def peft_task_type(model) -> str:
    return "SEQ_CLS" if "ForSequenceClassification" in type(model).__name__ else "CAUSAL_LM"


def wrap_with_peft(model, peft_config):
    """`get_peft_model` with a user-facing error when the targets do not exist."""
    from peft import get_peft_model

    try:
        return get_peft_model(model, peft_config)
    except ValueError as err:
        names = sorted({n.split(".")[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise ConfigError(
            f"method.target_modules: {err}. Linear modules in this model: {', '.join(names)}"
        ) from None


@register_method(LoraConfig, "low-rank adapters on linear layers (PEFT)", mergeable=True, saves_adapter=True)
def apply(model, cfg: LoraConfig):
    from peft import LoraConfig as PeftLoraConfig

    peft_config = PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules,
        task_type=peft_task_type(model),
    )
    return wrap_with_peft(model, peft_config)
