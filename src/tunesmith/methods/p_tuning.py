"""P-tuning (v1, Liu et al. 2021): virtual token embeddings at the input, produced by a prompt
encoder (MLP or LSTM). PEFT saves the encoder's output, so inference needs no encoder."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.methods import Method, register_method
from tunesmith.methods.lora import peft_task_type, wrap_with_peft


class PTuningConfig(MethodConfig):
    name: Literal["p-tuning"] = "p-tuning"
    num_virtual_tokens: int = Field(20, gt=0, description="Virtual tokens prepended to the input.")
    encoder: Literal["MLP", "LSTM"] = Field("MLP", description="Prompt encoder type.")
    encoder_hidden_size: int = Field(128, gt=0, description="Hidden size of the prompt encoder.")
    encoder_num_layers: int = Field(2, gt=0, description="Layers of the prompt encoder (LSTM).")
    encoder_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout in the prompt encoder.")


@register_method
class PTuning(Method):
    config_class = PTuningConfig
    summary = "input virtual tokens from a prompt encoder (P-tuning v1, PEFT)"
    mergeable, saves_adapter = False, True
    heads = ("causal-lm", "seq-cls", "seq2seq")  # virtual tokens shift the positions a QA head points at

    def apply(self, model, cfg: PTuningConfig):
        from peft import PromptEncoderConfig

        peft_config = PromptEncoderConfig(
            num_virtual_tokens=cfg.num_virtual_tokens, encoder_reparameterization_type=cfg.encoder,
            encoder_hidden_size=cfg.encoder_hidden_size, encoder_num_layers=cfg.encoder_num_layers,
            encoder_dropout=cfg.encoder_dropout, task_type=peft_task_type(model),
        )
        return wrap_with_peft(model, peft_config, option="method.name")
