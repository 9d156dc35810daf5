"""The packed-row attention (models/packed_attention.py) equals the masked path transformers
builds from position_ids: same logits, per-token losses and gradients (fp32, 1e-5)."""

import pytest
import torch
import torch.nn.functional as F

from tunesmith.data.packing import PackedCollator, boundaries, concatenate, sequence_lengths
from tunesmith.data.tokenize import IGNORE
from tunesmith.models.packed_attention import NAME, use_packed_attention

VOCAB = 97


class _Tokenizer:
    pad_token_id = 0
    eos_token_id = 0


def _tiny_llama(seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=False, attn_implementation="sdpa")
    return LlamaForCausalLM(config).eval()


def _batch(rows_of_lengths, seed=1):
    """Packed rows (each a list of sequence lengths; 1-token sequences included), padded to the longest."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for lengths in rows_of_lengths:
        features = []
        for n in lengths:
            ids = torch.randint(1, VOCAB, (n,), generator=g).tolist()
            features.append({"input_ids": ids, "labels": ids})
        rows.append(concatenate(features))
    return PackedCollator(_Tokenizer())(rows)


def _losses_and_grads(model, batch):
    model.zero_grad()
    logits = model(**batch, use_cache=False).logits
    targets = F.pad(batch["labels"], (0, 1), value=IGNORE)[..., 1:]
    keep = targets != IGNORE
    losses = F.cross_entropy(logits[keep], targets[keep], reduction="none")
    losses.sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), losses.detach(), grads


ROWS = [
    [[7, 1, 12, 5, 1, 9]],  # one row, several sequences, 1-token ones among them
    [[20, 3, 1], [6, 1, 1, 4], [11]],  # rows of different lengths: padding is a sequence of its own
]


@pytest.mark.parametrize("rows", ROWS)
def test_packed_attention_equals_the_masked_path(rows):
    batch = _batch(rows)
    masked_model = _tiny_llama()
    packed_model = _tiny_llama()
    assert use_packed_attention(packed_model) and packed_model.config._attn_implementation == NAME
    masked_inputs = {k: v for k, v in batch.items() if k in ("input_ids", "position_ids")}
    logits_m, losses_m, grads_m = _losses_and_grads(masked_model, {**masked_inputs, "labels": batch["labels"]})
    logits_p, losses_p, grads_p = _losses_and_grads(packed_model, batch)
    assert losses_m.numel() > 0
    torch.testing.assert_close(logits_p, logits_m, rtol=0, atol=1e-5)
    torch.testing.assert_close(losses_p, losses_m, rtol=0, atol=1e-5)
    assert grads_p.keys() == grads_m.keys() and grads_m
    for name in grads_m:
        torch.testing.assert_close(grads_p[name], grads_m[name], rtol=0, atol=1e-5, msg=name)


def test_packed_attention_equals_unpacked_sequences():
    """Each sequence's logits in the packed row are those of the sequence run alone."""
    lengths = [5, 1, 8, 3]
    batch = _batch([lengths])
    model = _tiny_llama()
    use_packed_attention(model)
    with torch.no_grad():
        packed = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits[0]
        alone = [model(input_ids=ids[None], use_cache=False).logits[0]
                 for ids in batch["input_ids"][0].split(lengths)]
    torch.testing.assert_close(packed, torch.cat(alone), rtol=0, atol=1e-5)


def test_lora_model_gets_the_boundaries_and_matches_the_masked_path(monkeypatch):
    from peft import LoraConfig, get_peft_model

    batch = _batch(ROWS[1])
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    masked_model = get_peft_model(_tiny_llama(), lora)
    packed_model = get_peft_model(_tiny_llama(), lora)
    packed_model.load_state_dict(masked_model.state_dict())
    assert use_packed_attention(packed_model)
    from tunesmith.models import packed_attention

    calls, original = [], packed_attention._sequence_lengths
    monkeypatch.setattr(packed_attention, "_sequence_lengths", lambda *a: calls.append(original(*a)) or calls[-1])
    _, losses_p, grads_p = _losses_and_grads(packed_model, batch)
    # rows of 24, 12 and 11 tokens padded to 24: each row's padding is one more sequence
    assert len(calls) == 2 and all(c == [20, 3, 1, 6, 1, 1, 4, 12, 11, 13] for c in calls)
    masked_inputs = {k: batch[k] for k in ("input_ids", "position_ids", "labels")}
    _, losses_m, grads_m = _losses_and_grads(masked_model, masked_inputs)
    torch.testing.assert_close(losses_p, losses_m, rtol=0, atol=1e-5)
    for name in grads_m:
        torch.testing.assert_close(grads_p[name], grads_m[name], rtol=0, atol=1e-5, msg=name)


def test_without_boundaries_or_with_a_cache_it_is_the_sdpa_path():
    model_sdpa, model_packed = _tiny_llama(), _tiny_llama()
    use_packed_attention(model_packed)
    ids = torch.randint(1, VOCAB, (2, 9), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding
    with torch.no_grad():
        a = model_sdpa(input_ids=ids, attention_mask=mask).logits
        b = model_packed(input_ids=ids, attention_mask=mask).logits
        gen_a = model_sdpa.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
        gen_b = model_packed.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert torch.equal(gen_a, gen_b)


def test_boundaries_follow_position_restarts():
    assert sequence_lengths([0, 1, 2, 0, 0, 1, 5, 6]) == [3, 1, 2, 2]
    b = boundaries([[0, 1, 0], [0, 1, 2]])
    assert b["cu_seq_lens_q"].tolist() == [0, 2, 3, 6] and b["max_length_q"] == 3


def test_only_sdpa_on_cpu_is_switched():
    from transformers import LlamaConfig, LlamaForCausalLM

    eager = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, attn_implementation="eager"))
    assert not use_packed_attention(eager) and eager.config._attn_implementation == "eager"


def test_a_packed_batch_becomes_one_row_when_attention_runs_per_sequence(tiny_config):
    from transformers import TrainingArguments

    from tunesmith.tasks import TASKS
    from tunesmith.training.batching import plan_batching

    lengths = [30, 7, 22, 15, 40, 9, 18, 25]
    features = [{"input_ids": list(range(1, n + 1)), "labels": list(range(1, n + 1))} for n in lengths]
    args = TrainingArguments(output_dir="unused", use_cpu=True, report_to="none")
    eager = _tiny_llama()
    eager.set_attn_implementation("eager")
    masked = plan_batching(tiny_config(), TASKS.get("sft"), _Tokenizer(), features, [], attention_span=40.0)
    masked.apply(args, eager)
    assert not masked.packed_attention
    assert masked.collator(features)["input_ids"].shape[0] > 1  # the masked path splits rows
    plan = plan_batching(tiny_config(), TASKS.get("sft"), _Tokenizer(), features, [], attention_span=40.0)
    plan.apply(args, _tiny_llama())
    batch = plan.collator(features)
    assert plan.packed_attention and batch["input_ids"].shape == (1, sum(lengths))
    assert batch["cu_seq_lens_q"].tolist() == [0, *torch.tensor(lengths).cumsum(0).tolist()]


def test_compiled_layers_give_the_eager_losses_and_gradients():
    """train.torch_compile compiles each transformer layer in place, dynamic shapes: packed rows
    of two lengths give eager's losses and gradients, and parameter names stay as they were.
    aot_eager traces the same forward and backward graphs as inductor without generating C++
    (minutes on 2 cores); the benchmark runs inductor (docs/performance.md)."""
    from peft import LoraConfig, get_peft_model

    from tunesmith.training.compile import compile_layers

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    eager, compiled = get_peft_model(_tiny_llama(), lora), get_peft_model(_tiny_llama(), lora)
    compiled.load_state_dict(eager.state_dict())
    assert use_packed_attention(eager) and use_packed_attention(compiled)
    names = list(compiled.state_dict())
    assert compile_layers(compiled, backend="aot_eager") == 2
    assert list(compiled.state_dict()) == names
    layers = compiled.base_model.model.model.layers
    assert all(layer._compiled_call_impl is not None for layer in layers)
    for rows in (ROWS[1], [[9, 1], [4, 4, 2], [3]]):  # 3 rows each (a batch of 1 would compile again)
        batch = _batch(rows)
        _, losses_e, grads_e = _losses_and_grads(eager, batch)
        _, losses_c, grads_c = _losses_and_grads(compiled, batch)
        torch.testing.assert_close(losses_c, losses_e, rtol=0, atol=1e-5)
        assert grads_c.keys() == grads_e.keys() and grads_e
        for name in grads_e:
            torch.testing.assert_close(grads_c[name], grads_e[name], rtol=0, atol=1e-5, msg=name)


def test_compiling_without_a_compiler_is_a_config_error(monkeypatch):
    from tunesmith.errors import ConfigError
    from tunesmith.training import compile as compile_module

    monkeypatch.setattr(compile_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "apt install g++" in compile_module.compiler_missing()
    with pytest.raises(ConfigError, match="train.torch_compile: false"):
        compile_module.compile_layers(_tiny_llama())
