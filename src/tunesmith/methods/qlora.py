"""QLoRA (Dettmers et al. 2023): LoRA on a base model quantised to 4 bits by bitsandbytes.

bitsandbytes' 4-bit training kernels need a CUDA GPU, so on a CPU-only machine this method
stops before loading anything and points to `lora` (same options, unquantised base).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.errors import ConfigError
from tunesmith.methods import register_method
from tunesmith.methods.lora import Lora, LoraConfig


class QLoraConfig(LoraConfig):
    name: Literal["qlora"] = "qlora"
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type (paper: nf4).")
    double_quant: bool = Field(True, description="Also quantise the quantisation constants.")
    compute_dtype: Literal["bfloat16", "float16", "float32"] = Field(
        "bfloat16", description="Dtype the 4-bit weights are dequantised to for matmuls.")


@register_method
class QLora(Lora):
    config_class = QLoraConfig
    summary = "LoRA on a 4-bit quantised base (needs a CUDA GPU)"

    def unavailable(self) -> str | None:
        import torch

        if not torch.cuda.is_available():
            return ("method qlora needs a CUDA GPU (bitsandbytes 4-bit kernels) and this machine has "
                    "none; use method.name=lora (same options, unquantised base) instead")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            return "method qlora needs bitsandbytes: pip install bitsandbytes (or use method.name=lora)"
        return None

    def load_kwargs(self, cfg: QLoraConfig) -> dict:
        import torch
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=cfg.quant_type,
            bnb_4bit_use_double_quant=cfg.double_quant,
            bnb_4bit_compute_dtype=getattr(torch, cfg.compute_dtype),
        )
        return {"quantization_config": quant, "device_map": {"": 0}}

    def apply(self, model, cfg: QLoraConfig):
        reason = self.unavailable()
        if reason:
            raise ConfigError(reason)
        from peft import prepare_model_for_kbit_training

        if not getattr(model, "is_loaded_in_4bit", False):
            raise ConfigError("method qlora: the base model was not loaded in 4 bits; load it with "
                              "the method's load_kwargs (tunesmith train does this)")
        return super().apply(prepare_model_for_kbit_training(model), cfg)
