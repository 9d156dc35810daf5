"""LoRA (PEFT): low-rank updates beside frozen weights, with PEFT's variants as options.

rsLoRA, DoRA, PiSSA, OLoRA and LoRA+ are also registered under their own names (one small file
each) with the matching option switched on, so `method: dora` and `method: {name: lora,
use_dora: true}` are the same run.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.errors import ConfigError
from tunesmith.methods import Method, register_method


class LoraConfig(MethodConfig):
    name: Literal["lora"] = "lora"
    r: int = Field(16, gt=0, description="Rank of the update matrices.")
    alpha: float = Field(32, gt=0, description="Scaling numerator: updates are scaled by alpha/r "
                         "(alpha/sqrt(r) with use_rslora).")
    # 0 by default (as in LLaMA-Factory): PEFT gives each adapted layer its own dropout, so q, k and
    # v each keep a dropped copy of the same input for backward, ~1.2 GB on SmolLM2 at 8 x 512 tokens
    # (docs/methods.md, "Memory").
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input (each adapted "
                           "layer keeps its own dropped copy of its input for backward).")
    target_modules: list[str] | str = Field(
        "all-linear",
        description="Module names to adapt (e.g. [q_proj, v_proj]) or 'all-linear'.",
    )
    use_rslora: bool = Field(False, description="rsLoRA: scale by alpha/sqrt(r), stable at high ranks.")
    use_dora: bool = Field(False, description="DoRA: learn magnitude and direction separately.")
    init: Literal["default", "gaussian", "pissa", "olora"] = Field(
        "default",
        description="Initialisation: default (B=0, A Kaiming), gaussian, pissa (principal singular "
        "vectors of W) or olora (QR of W). PiSSA/OLoRA adapters are converted to plain LoRA on "
        "save, so they load onto the original base model.",
    )


PEFT_TASK_TYPES = {  # model class suffix -> PEFT task type (which also picks the head PEFT trains)
    "ForSequenceClassification": "SEQ_CLS",
    "ForQuestionAnswering": "QUESTION_ANS",
}


def peft_task_type(model) -> str:
    if getattr(model.config, "is_encoder_decoder", False):
        return "SEQ_2_SEQ_LM"
    name = type(model).__name__
    return next((t for suffix, t in PEFT_TASK_TYPES.items() if name.endswith(suffix)), "CAUSAL_LM")


# Heads PEFT trains whole (modules_to_save) for a task type: LoRA-like methods must not wrap them too.
PEFT_HEADS = {"QUESTION_ANS": ["qa_outputs"]}


def head_exclusions(model) -> list[str] | None:
    """`exclude_modules` for a LoRA-like PEFT config on this model (None: nothing to exclude)."""
    return PEFT_HEADS.get(peft_task_type(model))


def wrap_with_peft(model, peft_config, option: str = "method.target_modules"):
    """`get_peft_model` with a user-facing error naming the option when it does not fit the model."""
    from peft import get_peft_model

    try:
        return get_peft_model(model, peft_config)
    except (ValueError, TypeError, KeyError) as err:
        names = sorted({n.split(".")[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise ConfigError(f"{option}: {str(err).rstrip('. ')}. Linear modules in this "
                          f"{model.config.model_type} model: {', '.join(names)}") from None


def peft_lora_config(model, cfg: LoraConfig, **extra):
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=cfg.target_modules,
        use_rslora=cfg.use_rslora, use_dora=cfg.use_dora,
        init_lora_weights=True if cfg.init == "default" else cfg.init,
        task_type=peft_task_type(model), exclude_modules=head_exclusions(model), **extra,
    )


# PEFT cannot convert a PiSSA/OLoRA adapter back to plain LoRA when a trained head rides along
# (modules_to_save): its conversion looks the head up under a key it never saved (peft 0.21).
CONVERTIBLE_HEADS = ("causal-lm", "seq2seq")


@register_method
class Lora(Method):
    config_class = LoraConfig
    summary = "low-rank adapters on linear layers (PEFT)"
    mergeable, saves_adapter = True, True

    def __init__(self):
        # PiSSA/OLoRA: the adapter folder as initialised, per model, for the conversion on save
        self._initial_adapters = weakref.WeakKeyDictionary()

    def apply(self, model, cfg: LoraConfig):
        if cfg.init in ("pissa", "olora") and peft_task_type(model) not in ("CAUSAL_LM", "SEQ_2_SEQ_LM"):
            raise ConfigError(f"method.init: {cfg.init} cannot save a model with a trained head "
                              f"({type(model).__name__}); use init default (or method dora) for this task")
        peft_model = wrap_with_peft(model, peft_lora_config(model, cfg))
        if cfg.init in ("pissa", "olora"):
            self._initial_adapters[peft_model] = _save_initial_adapter(peft_model)
        return peft_model

    def save_trained(self, model, directory) -> None:
        """PiSSA/OLoRA change the base weights; PEFT converts the trained adapter into a plain
        LoRA (twice the rank) relative to the untouched base, given the adapter as initialised."""
        initial = self._initial_adapters.get(model)
        if initial:
            model.save_pretrained(directory, path_initial_model_for_weight_conversion=initial)
        else:
            model.save_pretrained(directory)


def _save_initial_adapter(peft_model) -> str:
    """A temporary folder with the adapter as initialised; removed with the model (or at exit)."""
    config = peft_model.peft_config["default"]
    init, config.init_lora_weights = config.init_lora_weights, True
    folder = tempfile.mkdtemp(prefix="tunesmith-lora-init-")
    weakref.finalize(peft_model, shutil.rmtree, folder, ignore_errors=True)
    peft_model.save_pretrained(folder)
    config.init_lora_weights = init
    return folder
