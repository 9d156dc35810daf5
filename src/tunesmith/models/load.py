"""Load tokenizers and models from resolved directories."""

from __future__ import annotations

from pathlib import Path

from tunesmith.errors import ModelError


def load_tokenizer(model_dir: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_model(model_dir: Path, model_class=None, trust_remote_code: bool = False, **kwargs):
    """Weights in fp32 on the CPU; mixed precision is applied by autocast during training."""
    import torch
    from transformers import AutoModelForCausalLM

    cls = model_class or AutoModelForCausalLM
    from tunesmith.models.int8 import is_int8_dir, load_int8

    if is_int8_dir(model_dir):  # written by `tunesmith export --to int8`
        return load_int8(model_dir, model_class, trust_remote_code)
    try:
        return cls.from_pretrained(
            model_dir, dtype=torch.float32, trust_remote_code=trust_remote_code, **kwargs
        )
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load a model from {model_dir}: {err}") from None
