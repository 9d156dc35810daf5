"""Attention that stays inside each sequence of a packed row.

A packed row holds several sequences kept apart by position_ids. transformers turns those into
an (L x L) block-diagonal causal mask, and SDPA computes all L^2 scores and masks most of them
away: one row of 8 sequences of ~200 tokens costs ~7x the attention its sequences cost
(benchmarks/packed_attention.py). Here each sequence gets its own causal SDPA call on its slice
of the row, which costs what the sequences cost.

The sequence boundaries arrive the way flash-attention varlen reads them: `cu_seq_lens_q` /
`cu_seq_lens_k`, cumulative lengths over the flattened (batch x length) tokens, in the forward's
keyword arguments, which transformers hands down to every attention layer; the packing collators
send them (data/packing.py). The function is registered with transformers' AttentionInterface
(and SDPA's mask builder with its AttentionMaskInterface) as "tunesmith_packed", so every model
that dispatches attention through the interface can use it. Where it cannot apply (no
boundaries; keys other than the queries' own: a KV cache, prefix tuning, virtual prompt tokens;
a sliding window shorter than a sequence; position biases, soft-capping, attention sinks) it is
exactly transformers' SDPA with the mask. GPUs keep their own implementation (flash-attention
varlen reads the same boundaries).

Measured against (benchmarks/packed_attention.py, fp32 and bf16, 1,600 tokens in 8 sequences):
flex_attention with a document mask has no backward on CPU in torch 2.13; nested jagged tensors
do not support causal SDPA; padding the sequences into one batch for a single SDPA call was ~4x
the masked path, per-sequence calls ~7x.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "tunesmith_packed"
BOUNDARY_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")
_UNSUPPORTED = ("position_bias", "softcap", "s_aux")  # extras only the masked path handles


def _sequence_lengths(query, key, is_causal, kwargs) -> list[int] | None:
    """Lengths of the sequences in the flattened row, or None when the masked path must run."""
    cu_q, cu_k = kwargs.get("cu_seq_lens_q"), kwargs.get("cu_seq_lens_k")
    if cu_q is None or not is_causal or query.shape[2] != key.shape[2]:
        return None
    if any(kwargs.get(name) is not None for name in _UNSUPPORTED):
        return None
    if cu_k is not None and cu_k is not cu_q and not torch.equal(cu_k, cu_q):
        return None
    lengths = torch.diff(cu_q).tolist()
    if sum(lengths) != query.shape[0] * query.shape[2] or min(lengths) < 1:
        return None
    window = kwargs.get("sliding_window")
    if window is not None and max(lengths) > window:
        return None
    return lengths


@torch.compiler.disable  # the lengths are data: compiled layers call this eagerly, no recompile per row
def packed_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """transformers' attention-function signature: (batch, heads, length, dim) in,
    ((batch, length, heads, dim), None) out."""
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    lengths = _sequence_lengths(query, key, causal, kwargs)
    if lengths is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    batch, heads, length, dim = query.shape

    def flat(x):  # (batch, h, length, dim) -> (1, h, batch * length, dim); a view when batch == 1
        return x.transpose(0, 1).reshape(1, x.shape[1], batch * length, dim)

    pieces = zip(flat(query).split(lengths, 2), flat(key).split(lengths, 2), flat(value).split(lengths, 2))
    outs = [sdpa_attention_forward(module, q, k, v, None, dropout=dropout, scaling=scaling, is_causal=True)[0]
            for q, k, v in pieces]
    return torch.cat(outs, 1).reshape(batch, length, heads, dim), None


AttentionInterface.register(NAME, packed_sdpa)
AttentionMaskInterface.register(NAME, sdpa_mask)


def use_packed_attention(model) -> bool:
    """Switch a model that runs transformers' SDPA on the CPU to the packed-row attention above.
    Returns whether it did (other implementations and GPUs keep theirs)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return False
    try:
        if next(base.parameters()).device.type != "cpu":
            return False
    except StopIteration:
        return False
    config._attn_implementation = NAME
    for sub in (getattr(config, key, None) for key in getattr(config, "sub_configs", {}) or {}):
        if getattr(sub, "_attn_implementation", None) == "sdpa":
            sub._attn_implementation = NAME
    return True
