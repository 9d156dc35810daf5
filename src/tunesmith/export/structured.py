"""Structured magnitude pruning that really shrinks the layers (and so the file and the FLOPs).

torch.nn.utils.prune only masks weights; removing whole attention heads or MLP channels means
slicing the projection matrices and editing the config, which is written here for the llama
family (q/k/v/o and gate/up/down projections). Every layer keeps the same number of heads and
channels, so the result is a standard config any transformers version loads.
"""

from __future__ import annotations

STRUCTURED_ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3")


def _sliced(linear, rows=None, cols=None):
    """A new nn.Linear holding the chosen output rows / input columns of `linear`."""
    import torch

    weight = linear.weight.data
    weight = weight[rows] if rows is not None else weight
    weight = weight[:, cols] if cols is not None else weight
    bias = linear.bias
    if bias is not None and rows is not None:
        bias = bias[rows]
    new = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype)
    new.weight.data.copy_(weight)
    if bias is not None:
        new.bias.data.copy_(bias.data)
    return new


def _head_rows(heads, head_dim: int):
    import torch

    return torch.cat([torch.arange(h * head_dim, (h + 1) * head_dim) for h in heads])


def heads_to_keep(config, sparsity: float) -> tuple[int, int]:
    """(query heads kept per KV group, KV groups kept); raises if nothing would be removed."""
    from tunesmith.export import ExportError

    heads, kv = config.num_attention_heads, config.num_key_value_heads
    group = heads // kv
    if group > 1:  # grouped-query attention: drop query heads inside each group, keep every KV head
        kept = (max(1, round(group * (1 - sparsity))), kv)
    else:
        kept = (1, max(1, round(heads * (1 - sparsity))))
    if kept[0] * kept[1] == heads:
        raise ExportError(f"pruned: sparsity {sparsity} removes no attention head (the model has {heads} "
                          f"query heads, {group} per KV head); use a larger --sparsity, e.g. "
                          f"{1 / (group if group > 1 else heads):.2f}")
    return kept


def prune_heads(model, sparsity: float) -> dict:
    """Drop the query heads (or whole heads, without GQA) with the smallest weight norm."""
    import torch

    config = model.config
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    group = heads // kv
    per_group, kv_kept = heads_to_keep(config, sparsity)
    for layer in model.model.layers:
        attn = layer.self_attn
        q = attn.q_proj.weight.view(heads, head_dim, -1)
        o = attn.o_proj.weight.view(-1, heads, head_dim)
        score = q.pow(2).sum((1, 2)) + o.pow(2).sum((0, 2))
        if group > 1:
            keep = [g * group + int(i) for g in range(kv)
                    for i in sorted(score[g * group:(g + 1) * group].topk(per_group).indices)]
            kv_keep = list(range(kv))
        else:
            keep = sorted(int(i) for i in score.topk(kv_kept).indices)
            kv_keep = keep
        rows, kv_rows = _head_rows(keep, head_dim), _head_rows(kv_keep, head_dim)
        with torch.no_grad():
            attn.q_proj, attn.o_proj = _sliced(attn.q_proj, rows=rows), _sliced(attn.o_proj, cols=rows)
            attn.k_proj, attn.v_proj = _sliced(attn.k_proj, rows=kv_rows), _sliced(attn.v_proj, rows=kv_rows)
        attn.num_key_value_groups = len(keep) // len(kv_keep)
    config.head_dim = head_dim  # no longer hidden_size // heads
    config.num_attention_heads, config.num_key_value_heads = per_group * kv_kept, kv_kept
    return {"attention_heads": f"{heads} -> {config.num_attention_heads}",
            "kv_heads": f"{kv} -> {config.num_key_value_heads}",
            "achieved_sparsity": round(1 - config.num_attention_heads / heads, 4)}


def prune_channels(model, sparsity: float) -> dict:
    """Drop the MLP channels (gate/up rows, down columns) with the smallest weight norm."""
    import torch

    size = model.config.intermediate_size
    kept = max(1, round(size * (1 - sparsity)))
    for layer in model.model.layers:
        mlp = layer.mlp
        score = (mlp.gate_proj.weight.pow(2).sum(1) + mlp.up_proj.weight.pow(2).sum(1)
                 + mlp.down_proj.weight.pow(2).sum(0))
        keep = score.topk(kept).indices.sort().values
        with torch.no_grad():
            mlp.gate_proj, mlp.up_proj = _sliced(mlp.gate_proj, rows=keep), _sliced(mlp.up_proj, rows=keep)
            mlp.down_proj = _sliced(mlp.down_proj, cols=keep)
    model.config.intermediate_size = kept
    return {"intermediate_size": f"{size} -> {kept}", "achieved_sparsity": round(1 - kept / size, 4)}
