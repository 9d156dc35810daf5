"""Removing heads/channels must equal masking them: the sliced model computes the same function."""

import copy

import torch

from tunesmith.export.structured import prune_channels, prune_heads


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_channel_removal_equals_zeroing_those_channels():
    from tiny import tiny_llama

    model = tiny_llama(400).eval()
    masked = copy.deepcopy(model)
    pruned = copy.deepcopy(model)
    prune_channels(pruned, 0.25)
    for layer, small in zip(masked.model.layers, pruned.model.layers):
        kept = [any(torch.equal(row, s) for s in small.mlp.up_proj.weight) for row in layer.mlp.up_proj.weight]
        with torch.no_grad():
            layer.mlp.down_proj.weight[:, ~torch.tensor(kept)] = 0
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    assert pruned.config.intermediate_size == 48
    torch.testing.assert_close(_logits(pruned, ids), _logits(masked, ids), atol=1e-5, rtol=0)
    assert not torch.allclose(_logits(pruned, ids), _logits(model, ids))


def test_head_removal_equals_zeroing_those_heads():
    from tiny import tiny_llama

    model = tiny_llama(400).eval()  # 4 query heads, 2 KV heads, head_dim 8
    masked = copy.deepcopy(model)
    pruned = copy.deepcopy(model)
    prune_heads(pruned, 0.5)
    for layer, small in zip(masked.model.layers, pruned.model.layers):
        q = layer.self_attn.q_proj.weight.view(4, 8, -1)
        kept = [any(torch.equal(q[h], s) for s in small.self_attn.q_proj.weight.view(2, 8, -1)) for h in range(4)]
        with torch.no_grad():
            o = layer.self_attn.o_proj.weight.view(-1, 4, 8)
            o[:, ~torch.tensor(kept)] = 0
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    assert pruned.config.num_attention_heads == 2
    torch.testing.assert_close(_logits(pruned, ids), _logits(masked, ids), atol=1e-5, rtol=0)
