"""Causal-LM loss with the LM head applied only where a label is trained.

The LM head (hidden -> vocabulary) and the fp32 cross-entropy over it are a large share of a small
model's step (SmolLM2-135M: a 576x49152 matrix, a fifth of the forward FLOPs) and the largest
activation in memory. Prompt tokens, padding and packing separators have no label, so their logits
are wasted. transformers' `logits_to_keep` accepts a boolean (batch, seq) mask and returns logits
for the kept positions only; the model still runs its own head (soft-capping, scaling, PEFT
wrappers, autocast all stay as they are), we just ask for fewer rows of it.
"""

from __future__ import annotations

import functools
import inspect

import torch
import torch.nn.functional as F

IGNORE = -100


@functools.cache
def _forward_takes_mask(model_class: type) -> bool:
    """True when the model's forward slices its head input with `slice_logits_to_keep`, which
    understands a boolean mask (older per-model slicing code does not)."""
    try:
        source = inspect.getsource(model_class.forward)
    except (OSError, TypeError):
        return False
    return "slice_logits_to_keep" in source


def supports_labelled_logits(model) -> bool:
    """The model (or the base model inside a PEFT wrapper) can return logits for a mask of positions."""
    base = model
    peft_config = getattr(model, "peft_config", None)
    if peft_config:
        if any(getattr(c, "is_prompt_learning", False) for c in peft_config.values()):
            return False  # virtual prompt tokens shift positions; keep the standard path
        if any(str(getattr(c, "peft_type", "")).endswith("ADALORA") for c in peft_config.values()):
            return False  # AdaLoRA adds its orthogonality penalty to the loss inside forward
        base = model.get_base_model()
    config = getattr(base, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "output_router_logits", False):
        return False  # MoE auxiliary loss is added by the model only when it gets labels
    return _forward_takes_mask(type(base))


def shifted_labels(labels: torch.Tensor) -> torch.Tensor:
    """Targets aligned with positions: position t predicts labels[t + 1]; the last predicts nothing."""
    return F.pad(labels, (0, 1), value=IGNORE)[..., 1:]


def labelled_logits_loss(model, inputs: dict, num_items_in_batch=None):
    """Mean token cross-entropy over trained labels, equal to the model's own loss.

    Returns None when no position in the batch is trained (the caller uses the standard path).
    With `num_items_in_batch` (the Trainer's count over the whole accumulated step) the sum is
    divided by it, as transformers' ForCausalLMLoss does.
    """
    targets = shifted_labels(inputs["labels"])
    keep = targets != IGNORE
    if not bool(keep.any()):
        return None
    model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    outputs = model(**model_inputs, logits_to_keep=keep, use_cache=False)
    logits = outputs.logits.float()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[keep], reduction="sum")
    if num_items_in_batch is None:
        return loss / keep.sum()
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch
