"""Packing keeps examples apart: per-token losses equal to unpacked ones; the bins are valid."""

import json
import random

import pytest
import torch
import torch.nn.functional as F

from tunesmith.data.packing import PackedCollator, best_fit_decreasing, pack_features
from tunesmith.data.tokenize import IGNORE


def test_best_fit_decreasing_uses_every_example_once_and_respects_capacity():
    rng = random.Random(0)
    lengths = [rng.randint(1, 100) for _ in range(300)]
    bins = best_fit_decreasing(lengths, 128)
    flat = sorted(i for b in bins for i in b)
    assert flat == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 128 for b in bins)
    lower_bound = -(-sum(lengths) // 128)
    assert len(bins) <= lower_bound * 1.05 + 1  # BFD is within a few percent of optimal here


def test_best_fit_decreasing_rejects_an_example_longer_than_a_bin():
    with pytest.raises(ValueError, match="200 tokens"):
        best_fit_decreasing([10, 200], 128)


def _sft_features(config, tokenizer, rows):
    from tunesmith.tasks import TASKS

    records = [{"messages": m, "_origin": f"test:{i}"} for i, m in enumerate(rows)]
    features, _ = TASKS.get("sft").build_features(records, tokenizer, config)
    return features


def _rows(n):
    rng = random.Random(1)
    return [
        [{"role": "system", "content": "be brief" * rng.randint(0, 2)},
         {"role": "user", "content": f"what is {i} plus {rng.randint(0, 99)}?" * rng.randint(1, 3)},
         {"role": "assistant", "content": f"it is {i * 7}, i think." * rng.randint(1, 4)}]
        for i in range(n)
    ]


def _per_token_losses(logits, labels):
    """Cross-entropy at every position whose shifted label is trained, in order."""
    targets = F.pad(labels, (0, 1), value=IGNORE)[..., 1:]
    keep = targets != IGNORE
    return F.cross_entropy(logits[keep].float(), targets[keep], reduction="none")


@pytest.fixture
def tiny_sft(tiny_model_dir, tiny_config):
    from transformers import AutoModelForCausalLM

    from tunesmith.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    config = tiny_config(data={"train_on_prompt": False, "cutoff_len": 200})
    features = _sft_features(config, tokenizer, _rows(10))
    assert any(IGNORE in f["labels"] for f in features)  # the prompt is masked
    model = load_model(tiny_model_dir, AutoModelForCausalLM).eval()
    model.config.use_cache = False
    return tokenizer, features, model


def _unpacked_losses(model, features):
    out = []
    for f in features:
        ids = torch.tensor([f["input_ids"]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        out.append(_per_token_losses(logits, torch.tensor([f["labels"]])))
    return torch.cat(out)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_bins_give_the_unpacked_per_token_losses(tiny_sft, attn):
    tokenizer, features, model = tiny_sft
    model.set_attn_implementation(attn)
    expected = _unpacked_losses(model, features)
    lengths = [len(f["input_ids"]) for f in features]
    pack_length = max(lengths) + 40
    packed, report = pack_features(features, pack_length)
    assert report.rows < len(features) and report.tokens == sum(lengths)
    batch = PackedCollator(tokenizer)(packed)  # several rows, padded: padding is its own sequence
    assert "attention_mask" not in batch
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
    # Regroup the packed per-token losses by example, in example order.
    by_example = {}
    bins = [sorted(b) for b in best_fit_decreasing(lengths, pack_length)]
    for row, members in enumerate(bins):
        start = 0
        for i in members:
            n = lengths[i]
            seg_logits = logits[row : row + 1, start : start + n]
            seg_labels = torch.tensor([features[i]["labels"]])
            by_example[i] = _per_token_losses(seg_logits, seg_labels)
            start += n
    got = torch.cat([by_example[i] for i in range(len(features))])
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # The packed labels themselves train exactly the unpacked positions (no cross-example target).
    packed_targets = _per_token_losses(logits, batch["labels"])
    assert packed_targets.numel() == expected.numel()
    torch.testing.assert_close(packed_targets.sort().values, expected.sort().values, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("span", [40.0, 1e9], ids=["several-rows", "one-row"])
def test_batch_packing_gives_the_padded_batch_loss(tiny_sft, span):
    from tunesmith.data.packing import BatchPackingCollator
    from tunesmith.tasks.collate import CausalLMCollator

    tokenizer, features, model = tiny_sft
    padded = CausalLMCollator(tokenizer)(features)
    packed = BatchPackingCollator(tokenizer, attention_span=span)(features)
    assert "attention_mask" not in packed
    assert (packed["input_ids"].shape[0] > 1) == (span < 1e9)
    assert packed["input_ids"].numel() < padded["input_ids"].numel()
    with torch.no_grad():
        loss_padded = model(**padded).loss
        loss_packed = model(**packed).loss
    torch.testing.assert_close(loss_packed, loss_padded, atol=1e-5, rtol=1e-5)


def test_cheapest_rows_balances_and_keeps_every_example():
    from tunesmith.data.packing import cheapest_rows

    lengths = [500, 120, 90, 300, 60, 210, 180, 40]
    rows = cheapest_rows(lengths, attention_span=3000)
    assert sorted(i for r in rows for i in r) == list(range(8))
    loads = [sum(lengths[i] for i in r) for r in rows]
    assert 2 <= len(rows) < 8 and max(loads) * len(rows) <= sum(lengths) * 1.15
    assert len(cheapest_rows(lengths, attention_span=1e12)) == 1  # attention free: one row, no padding


def test_pack_length_shorter_than_cutoff_is_a_config_error(tiny_config):
    from tunesmith.errors import ConfigError
    from tunesmith.tasks import TASKS
    from tunesmith.training.batching import plan_batching

    config = tiny_config(train={"pack_length": 64}, data={"cutoff_len": 128})
    with pytest.raises(ConfigError, match="pack_length=64 is shorter than data.cutoff_len=128"):
        plan_batching(config, TASKS.get("sft"), None, [], [])


def test_training_with_bins_learns_and_logs_the_packing(tiny_config, tmp_path):
    from tunesmith.training.runner import train

    config = tiny_config(train={"pack_length": 256, "batch_size": 2, "max_steps": 4}, data={"cutoff_len": 128})
    result = train(config)
    assert result.status == "succeeded"
    events = [json.loads(line) for line in (result.run_dir / "events.jsonl").read_text().splitlines()]
    speed = next(e for e in events if e["event"] == "speed")
    assert speed["batching"] == "bins" and speed["packed_rows"] < speed["examples"]
    assert speed["packed_attention"] is True and "attention per packed sequence" in speed["message"]
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]


def test_packed_training_keeps_padded_eval_batches(tiny_sft, tiny_config, tmp_path):
    from transformers import TrainingArguments

    from tunesmith.tasks import TASKS
    from tunesmith.training.batching import plan_batching
    from tunesmith.training.trainer import TunesmithTrainer

    tokenizer, features, model = tiny_sft
    plan = plan_batching(tiny_config(), TASKS.get("sft"), tokenizer, features, features[:5])
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4,
                             per_device_eval_batch_size=4, use_cpu=True, report_to="none",
                             remove_unused_columns=False)
    trainer = TunesmithTrainer(model=model, args=args, train_dataset=plan.train, eval_dataset=plan.eval,
                               data_collator=plan.collator)
    trainer.eval_data_collator = plan.eval_collator
    train_batch = next(iter(trainer.get_train_dataloader()))
    eval_batch = next(iter(trainer.get_eval_dataloader()))
    assert "position_ids" in train_batch and "attention_mask" not in train_batch
    assert "attention_mask" in eval_batch and eval_batch["input_ids"].shape[0] == 4
    assert "position_ids" in next(iter(trainer.get_train_dataloader()))  # the swap is undone


def test_balanced_rows_improves_on_longest_first_by_hand():
    from tunesmith.data.packing import balanced_rows

    # longest-first alone: [3, 2, 2] and [3, 2] (longest row 7); one swap makes it 6 and 6
    rows = balanced_rows([3, 3, 2, 2, 2], 2)
    assert sorted(sum([3, 3, 2, 2, 2][i] for i in row) for row in rows) == [6, 6]
    assert sorted(i for row in rows for i in row) == [0, 1, 2, 3, 4]
