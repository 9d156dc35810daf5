"""Precision policy: frozen linear weights stored in bf16 give autocast's arithmetic with less memory."""

import copy

import torch

from tiny import tiny_llama, tiny_tokenizer
from tunesmith.methods import METHODS
from tunesmith.training.precision import store_frozen_linears_in_bf16


def _lora_model():
    spec = METHODS.get("lora")
    return spec.apply(tiny_llama(len(tiny_tokenizer())), spec.config_class(r=4, alpha=8, dropout=0.0))


def _loss_and_grads(model, ids):
    model.zero_grad()
    with torch.autocast("cpu", torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_frozen_bf16_weights_match_autocast_and_keep_trainables_fp32():
    torch.manual_seed(0)
    reference = _lora_model()
    for name, p in reference.named_parameters():  # a trained-looking adapter, so gradients flow everywhere
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    stored = copy.deepcopy(reference)
    converted = store_frozen_linears_in_bf16(stored)
    ids = torch.randint(3, 60, (2, 12))

    loss_ref, grads_ref = _loss_and_grads(reference, ids)
    loss_new, grads_new = _loss_and_grads(stored, ids)

    assert converted == 2 * 7 + 1  # q, k, v, o, gate, up, down in both layers, and the untied LM head
    torch.testing.assert_close(loss_new, loss_ref, rtol=1e-3, atol=1e-3)
    for name, grad in grads_ref.items():
        torch.testing.assert_close(grads_new[name], grad, rtol=2e-2, atol=1e-4)
    dtypes = {n: p.dtype for n, p in stored.named_parameters()}
    assert all(dtypes[n] == torch.float32 for n, p in stored.named_parameters() if p.requires_grad)
    assert dtypes["base_model.model.model.embed_tokens.weight"] == torch.float32  # residual stream stays fp32
    assert dtypes["base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"] == torch.bfloat16
    assert sum(p.numel() * p.element_size() for p in stored.parameters()) < \
        sum(p.numel() * p.element_size() for p in reference.parameters())
