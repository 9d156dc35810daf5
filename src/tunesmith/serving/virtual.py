"""Prompt-learning runs on a shared base: their virtual tokens as key/value states, made once per run.

Prompt tuning and P-tuning put trained embeddings before the prompt; prefix tuning and P-tuning
v2 put trained keys and values before it in every layer. Either way, what the prompt's tokens
attend to is a fixed prefix of the KV cache: the prefix's keys and values (prefix tuning), or
the base model's keys and values of the virtual embeddings (prompt tuning; causal attention, so
they never depend on the prompt). So each run's prefix is computed once when the run loads, and
its requests are rows of the base model's batch whose cache starts with it: they decode in the
same forward passes as LoRA adapters and the base (a row with a prefix runs no LoRA), and the
real tokens sit at positions after the virtual ones, as in PEFT's own generate. PEFT reads the
adapter (`PeftModel.get_prompt`, its reshaping per architecture included); the wrapper is then
dropped, so the run costs its prefix in memory, not a copy of the base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tunesmith.serving.errors import BadRequest

SERVED = {"PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING"}  # PEFT types whose prompt is the same for every request
PREFIX_TYPES = {"PREFIX_TUNING"}  # trained keys and values; the others train input embeddings


@dataclass
class Prefix:
    """Per layer, the virtual tokens' keys and values: [1, kv heads, length, head dim] each."""

    keys: list
    values: list

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[-2])


def virtual_tokens(adapter_dir: str | Path) -> int:
    """How many cache positions the run's virtual tokens take (from its adapter_config.json)."""
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    return int(config.get("num_virtual_tokens") or 0) * int(config.get("num_transformer_submodules") or 1)


def make_prefix(forward, model, adapter_dir: str | Path, base_rows: list[str] | None) -> Prefix:
    """The run's prefix on `model` (the bare transformers model); `forward` runs the base model for
    prompt-tuning embeddings with `base_rows` as its adapter names (no LoRA on the prefix)."""
    import torch
    from peft import PeftModel
    from transformers import DynamicCache

    try:
        wrapper = PeftModel.from_pretrained(model, str(adapter_dir), adapter_name="virtual").eval()
        with torch.inference_mode():
            prompt = wrapper.get_prompt(1)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as err:  # a broken or half-written adapter
        raise BadRequest(f"{adapter_dir}: the run's virtual tokens cannot be read ({type(err).__name__}: {err}); "
                         "is the run finished?", "model") from None
    if wrapper.active_peft_config.peft_type.value in PREFIX_TYPES:
        cache = prompt
    else:
        mask = torch.ones(1, prompt.shape[1], dtype=torch.long)
        _, cache = forward(None, mask, DynamicCache(), base_rows, embeds=prompt)
    return Prefix([layer.keys for layer in cache.layers], [layer.values for layer in cache.layers])


def prefixed_cache(prefixes: list[Prefix | None]):
    """A DynamicCache holding each row's prefix, left padded to the longest, and its mask."""
    import torch
    from transformers import DynamicCache

    some = next(p for p in prefixes if p is not None)
    width = max(p.length if p else 0 for p in prefixes)
    cache = DynamicCache()
    for layer in range(len(some.keys)):
        keys = [_padded(p.keys[layer] if p else None, some.keys[layer], width) for p in prefixes]
        values = [_padded(p.values[layer] if p else None, some.values[layer], width) for p in prefixes]
        cache.update(torch.cat(keys), torch.cat(values), layer)
    mask = torch.tensor([[0] * (width - (p.length if p else 0)) + [1] * (p.length if p else 0) for p in prefixes])
    return cache, mask


def _padded(tensor, like, width: int):
    """`tensor` (None: no prefix) with zeros on the left up to `width` positions."""
    import torch

    shape = list(like.shape)
    shape[-2] = width - (tensor.shape[-2] if tensor is not None else 0)
    pad = like.new_zeros(shape)
    return pad if tensor is None else torch.cat([pad, tensor], dim=-2)
