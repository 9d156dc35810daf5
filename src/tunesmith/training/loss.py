"""Causal-LM loss with the LM head applied only where a label is trained.

The LM head (hidden -> vocabulary) and the fp32 cross-entropy over it are a large share of a small
model's step (SmolLM2-135M: a 576x49152 matrix, a fifth of the forward FLOPs) and the largest
activation in memory. Prompt tokens, padding and packing separators have no label, so their logits
are wasted. transformers' `logits_to_keep` accepts a boolean (batch, seq) mask and returns logits
for the kept positions only; the model still runs its own head (soft-capping, scaling, PEFT
wrappers, autocast all stay as they are), we just ask for fewer rows of it.

Where the head is a plain linear layer applied straight to the hidden states (checked in the
model's forward source), the head's output is taken as hidden states instead (the head module is
swapped for an identity for that one call) and the head plus cross-entropy run in chunks of
positions, each chunk's gradient computed at once and its logits dropped: the (labelled tokens x
vocabulary) logits, their fp32 copy and their gradient never exist whole. This is the fused
linear cross-entropy of GPU kernels such as Liger's, written for any device in plain torch since
those kernels are Triton-only.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re

import torch
import torch.nn.functional as F

IGNORE = -100
# Logit elements per chunk of the fused head + loss (fp32: 64 MB; ~340 positions of a 49k vocabulary).
CHUNK_ELEMENTS = 2**24


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
    peft_config = getattr(model, "peft_config", None) or {}
    if any(getattr(c, "is_prompt_learning", False) for c in peft_config.values()):
        return False  # virtual prompt tokens shift positions; keep the standard path
    if any(str(getattr(c, "peft_type", "")).endswith("ADALORA") for c in peft_config.values()):
        return False  # AdaLoRA adds its orthogonality penalty to the loss inside forward
    base = _base_model(model)
    config = getattr(base, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "output_router_logits", False):
        return False  # MoE auxiliary loss is added by the model only when it gets labels
    return _forward_takes_mask(type(base))


@functools.cache
def _head_is_plain(model_class: type) -> bool:
    """True when the forward applies `self.lm_head` to the hidden states and nothing after it
    (no soft-capping or scaling of the logits), so head + loss can be computed outside it."""
    try:
        source = inspect.getsource(model_class.forward)
    except (OSError, TypeError):
        return False
    return re.search(r"logits = self\.lm_head\(hidden_states\)\s*\n\s*loss = None", source) is not None


def _base_model(model):
    """The transformers model inside torch.compile, DDP and PEFT wrappers (or the model itself)."""
    from torch.nn.parallel import DistributedDataParallel

    model = getattr(model, "_orig_mod", model)  # torch.compile
    if isinstance(model, DistributedDataParallel):
        model = getattr(model.module, "_orig_mod", model.module)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _plain_head(model) -> torch.nn.Linear | None:
    """The model's LM head when the chunked head + loss can stand in for it, else None."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(getattr(model, "_orig_mod", model), DistributedDataParallel):
        return None  # DDP reduces a weight's gradient once, from the hooks of its own forward
    base = _base_model(model)
    head = getattr(base, "lm_head", None)
    if type(head) is not torch.nn.Linear or not _head_is_plain(type(base)):
        return None  # a PEFT-wrapped or trained-as-a-copy head, or logits post-processed
    weight = head.weight
    if type(weight) is not torch.nn.Parameter or weight.shape != (head.out_features, head.in_features):
        return None  # sharded (FSDP, DeepSpeed ZeRO-3): only whole inside the head's own forward
    return head


@contextlib.contextmanager
def _head_as_identity(model):
    """The model's forward returns its (kept) final hidden states in place of logits."""
    base = _base_model(model)
    head = base.lm_head
    base.lm_head = torch.nn.Identity()
    try:
        yield
    finally:
        base.lm_head = head


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of `linear(hidden, weight, bias)` against `targets`, chunk by chunk.

    Forward computes each chunk's logits in `compute_dtype` (autocast's dtype, or the weight's),
    its loss in fp32 and, when gradients are needed, its gradients at once (softmax minus one-hot,
    then the two matmuls autocast's backward would do); backward only scales them.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, compute_dtype):
        needs_hidden, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        w = weight.to(compute_dtype)
        b = None if bias is None else bias.to(compute_dtype)
        grad_hidden = torch.empty_like(hidden) if needs_hidden else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if needs_weight else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if needs_bias else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        rows = max(1, CHUNK_ELEMENTS // weight.shape[0])
        for start in range(0, hidden.shape[0], rows):
            h = hidden[start:start + rows].to(compute_dtype)
            t = targets[start:start + rows]
            logits = F.linear(h, w, b).float()
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
            if not (needs_hidden or needs_weight or needs_bias):
                continue
            grad_logits = logits.sub_(lse[:, None]).exp_()  # softmax, in place
            grad_logits[torch.arange(len(t), device=t.device), t] -= 1
            g = grad_logits.to(compute_dtype)
            if needs_hidden:
                grad_hidden[start:start + rows] = g @ w
            if needs_weight:
                grad_weight += (g.t() @ h).float()
            if needs_bias:
                grad_bias += grad_logits.sum(0)
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        scaled = [None if g is None else g * grad_total.to(g.dtype) for g in ctx.saved_tensors]
        return scaled[0], scaled[1], scaled[2], None, None


def chunked_head_loss(hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor) -> torch.Tensor:
    """Summed token cross-entropy of `head(hidden)`, in the dtype autocast would use."""
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else head.weight.dtype
    with torch.autocast(device, enabled=False):
        return ChunkedLinearCrossEntropy.apply(hidden, head.weight, head.bias, targets, dtype)


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
    head = _plain_head(model)
    if head is not None:
        with _head_as_identity(model):
            hidden = model(**model_inputs, logits_to_keep=keep, use_cache=False).logits
        loss = chunked_head_loss(hidden.reshape(-1, hidden.shape[-1]), head, targets[keep])
    else:
        logits = model(**model_inputs, logits_to_keep=keep, use_cache=False).logits.float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[keep], reduction="sum")
    if num_items_in_batch is None:
        return loss / keep.sum()
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch
