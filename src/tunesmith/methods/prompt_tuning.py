"""Prompt tuning (Lester et al. 2021): trained soft-prompt embeddings at the input only,
initialised at random or from the embeddings of a text (the paper's better start)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.errors import ConfigError
from tunesmith.methods import Method, register_method
from tunesmith.methods.lora import peft_task_type, wrap_with_peft


class PromptTuningConfig(MethodConfig):
    name: Literal["prompt-tuning"] = "prompt-tuning"
    num_virtual_tokens: int = Field(20, gt=0, description="Soft-prompt length.")
    init_text: str | None = Field(
        None, description="Initialise the prompt from this text's token embeddings "
        "(e.g. 'Answer the question truthfully:'); None: random.")


@register_method
class PromptTuning(Method):
    config_class = PromptTuningConfig
    summary = "trained soft prompt at the input, random or from text (PEFT)"
    mergeable, saves_adapter = False, True
    heads = ("causal-lm", "seq-cls", "seq2seq")  # virtual tokens shift the positions a QA head points at

    def apply(self, model, cfg: PromptTuningConfig):
        from peft import PromptTuningConfig as PeftPromptConfig

        extra = {}
        if cfg.init_text:
            source = getattr(model, "name_or_path", "")
            if not source:
                raise ConfigError("method.init_text needs a model loaded from a directory (for its tokenizer)")
            extra = {"prompt_tuning_init": "TEXT", "prompt_tuning_init_text": cfg.init_text,
                     "tokenizer_name_or_path": source}
        peft_config = PeftPromptConfig(num_virtual_tokens=cfg.num_virtual_tokens,
                                       task_type=peft_task_type(model), **extra)
        return wrap_with_peft(model, peft_config, option="method.name")
