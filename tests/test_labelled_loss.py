"""The LM head on labelled positions only gives the model's own loss and gradients."""

import pytest
import torch

import tunesmith.training.loss as loss_module
from tunesmith.data.tokenize import IGNORE
from tunesmith.training.loss import labelled_logits_loss, supports_labelled_logits


def _batch(vocab: int):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (3, 24), generator=g)
    labels = ids.clone()
    labels[:, :9] = IGNORE  # a masked prompt
    labels[1, 18:] = IGNORE  # padding
    mask = torch.ones_like(ids)
    mask[1, 18:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _model(tiny_model_dir, lora: bool):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    return model


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _both_ways(model, batch):
    """(loss, gradients) from the model's own loss, then from labelled_logits_loss."""
    expected = model(**batch).loss
    expected.backward()
    expected_grads = _grads(model)
    model.zero_grad()
    got = labelled_logits_loss(model, batch)
    got.backward()
    return (expected, expected_grads), (got, _grads(model))


@pytest.mark.parametrize("chunk_rows", [None, 5], ids=["one-chunk", "chunks-of-5"])
@pytest.mark.parametrize("lora", [False, True], ids=["full", "peft-lora"])
def test_labelled_logits_loss_equals_the_models_loss_and_gradients(tiny_model_dir, lora, chunk_rows, monkeypatch):
    model = _model(tiny_model_dir, lora)
    if chunk_rows:  # 5 positions per chunk: the 30 labelled positions take 6 chunks
        monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", chunk_rows * model.config.vocab_size)
    assert loss_module._plain_head(model) is not None  # the chunked head + loss is what runs
    assert supports_labelled_logits(model)
    (expected, expected_grads), (got, got_grads) = _both_ways(model, _batch(model.config.vocab_size))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert got_grads.keys() == expected_grads.keys() and got_grads
    for name, grad in expected_grads.items():
        torch.testing.assert_close(got_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_chunked_head_loss_under_bf16_autocast_matches_the_models_loss(tiny_model_dir, monkeypatch):
    model = _model(tiny_model_dir, lora=True)
    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", 7 * model.config.vocab_size)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (expected, expected_grads), (got, got_grads) = _both_ways(model, _batch(model.config.vocab_size))
    torch.testing.assert_close(got, expected, atol=2e-3, rtol=2e-3)
    assert got_grads.keys() == expected_grads.keys() and got_grads
    for name, grad in expected_grads.items():
        torch.testing.assert_close(got_grads[name], grad, atol=1e-3, rtol=2e-2, msg=name)


def test_a_head_tied_to_the_embeddings_gets_both_gradients(monkeypatch):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True))
    assert model.lm_head.weight is model.model.embed_tokens.weight
    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", 4 * 64)
    (_, expected_grads), (_, got_grads) = _both_ways(model, _batch(64))
    name = "model.embed_tokens.weight"  # the one tensor: its gradient sums the lookup's and the head's
    torch.testing.assert_close(got_grads[name], expected_grads[name], atol=1e-5, rtol=1e-4)


def test_a_compiled_model_takes_the_chunked_path_with_its_own_loss(tiny_model_dir):
    model = _model(tiny_model_dir, lora=False)  # full fine-tuning: no PEFT wrapper to reach inside
    compiled = torch.compile(model, backend="eager")  # what train.torch_compile hands compute_loss
    assert loss_module._plain_head(compiled) is model.lm_head
    batch = _batch(model.config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(labelled_logits_loss(compiled, batch), model(**batch).loss, atol=1e-5, rtol=1e-5)
    assert type(model.lm_head) is torch.nn.Linear and "lm_head" not in vars(compiled)  # head back, in place


def test_a_trained_head_keeps_the_models_own_head(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules=["q_proj", "lm_head"], init_lora_weights=False))
    assert loss_module._plain_head(model) is None
    batch = _batch(model.config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(labelled_logits_loss(model, batch), model(**batch).loss, atol=1e-5, rtol=1e-5)


def test_labelled_logits_loss_divides_by_the_accumulated_item_count(tiny_model_dir):
    model = _model(tiny_model_dir, lora=False)
    batch = _batch(model.config.vocab_size)
    items = torch.tensor(1000)
    with torch.no_grad():
        expected = model(**batch, num_items_in_batch=items).loss
        got = labelled_logits_loss(model, batch, items)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_a_batch_without_trained_labels_falls_back(tiny_model_dir):
    model = _model(tiny_model_dir, lora=False)
    batch = _batch(model.config.vocab_size)
    batch["labels"][:] = IGNORE
    assert labelled_logits_loss(model, batch) is None


def test_loss_only_evaluation_on_labelled_logits_matches_the_standard_eval(tiny_model_dir, tmp_path, monkeypatch):
    from transformers import TrainingArguments

    import tunesmith.training.trainer as trainer_module
    from tunesmith.tasks.collate import CausalLMCollator
    from tunesmith.training.trainer import TunesmithTrainer

    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return labelled_logits_loss(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "labelled_logits_loss", counted)
    model = _model(tiny_model_dir, lora=True)
    batch = _batch(model.config.vocab_size)
    rows = [{"input_ids": i[m.bool()].tolist(), "labels": lab[m.bool()].tolist()}
            for i, lab, m in zip(batch["input_ids"], batch["labels"], batch["attention_mask"])]

    class Pad:
        pad_token_id = 0

    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=2, use_cpu=True,
                             report_to="none", remove_unused_columns=False)
    trainer = TunesmithTrainer(model=model, args=args, eval_dataset=rows, data_collator=CausalLMCollator(Pad()))
    standard = trainer.evaluate()["eval_loss"]
    trainer.labelled_logits_only = True
    assert not calls
    fast = trainer.evaluate()["eval_loss"]
    assert calls  # the labelled-logits path ran
    assert abs(fast - standard) < 1e-5
