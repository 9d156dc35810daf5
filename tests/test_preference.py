"""Preference pairs: every layout parses, bad pairs are reported, DPO trains against the adapter-free base."""

import json

import pytest

from tunesmith.data.records import RowError
from tunesmith.errors import DataError
from tunesmith.tasks.preference import preference_record
from tunesmith.training.runner import train

PROMPT = [{"role": "user", "content": "say hi"}]


@pytest.mark.parametrize("row", [
    {"conversations": [{"from": "human", "value": "say hi"}], "chosen": {"from": "gpt", "value": "hi"},
     "rejected": {"from": "gpt", "value": "no"}},
    {"input": {"messages": PROMPT}, "preferred_output": [{"role": "assistant", "content": "hi"}],
     "non_preferred_output": [{"role": "assistant", "content": "no"}]},
    {"chosen": "\n\nHuman: say hi\n\nAssistant: hi", "rejected": "\n\nHuman: say hi\n\nAssistant: no"},
    {"prompt": "say hi", "chosen": "hi", "rejected": "no"},
    {"instruction": "say hi", "chosen": "hi", "rejected": "no"},
    {"chosen_messages": [{"role": "user", "content": [{"type": "text", "value": "say hi"}]},
                         {"role": "assistant", "content": [{"type": "text", "value": "hi"}]}],
     "rejected_messages": [{"role": "user", "content": [{"type": "text", "value": "say hi"}]},
                           {"role": "assistant", "content": [{"type": "text", "value": "no"}]}]},
])
def test_every_layout_gives_the_same_pair(row):
    assert preference_record(row) == {"prompt": PROMPT, "chosen": "hi", "rejected": "no"}


def test_each_layout_is_a_registered_preference_format():
    from tunesmith.data.formats import FORMATS, detect_format

    layouts = test_every_layout_gives_the_same_pair.pytestmark[0].args[1]
    found = {detect_format(row, kind="preference").name for row in layouts}
    assert found == {f.name for f in FORMATS if f.kind == "preference"}  # five formats, each used
    assert len(found) == 5
    # auto-detection for chat and text data never picks a preference format
    assert all(detect_format(row) is None or detect_format(row).kind == "record" for row in layouts)


def test_same_reply_twice_is_a_bad_pair():
    with pytest.raises(RowError, match="same reply"):
        preference_record({"prompt": "q", "chosen": "a", "rejected": " a "})


def pairs_file(path, n=16, bad_line=None):
    rows = []
    for i in range(n):
        rows.append({"conversations": [{"from": "human", "value": f"what is {i} plus {i}?"}],
                     "chosen": {"from": "gpt", "value": f"{i} plus {i} is {2 * i}."},
                     "rejected": {"from": "gpt", "value": "i do not know, go away."}})
    if bad_line is not None:
        rows[bad_line - 1]["rejected"] = rows[bad_line - 1]["chosen"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_dpo_with_lora_raises_reward_accuracy_and_scores_pairs(tiny_config, tmp_path):
    from tunesmith.inference.predict import predict_file

    data = pairs_file(tmp_path / "pairs.jsonl")
    config = tiny_config(data={"train": [str(data)], "eval_ratio": 0.25},
                         task={"name": "dpo", "beta": 0.5},
                         train={"max_steps": 8, "batch_size": 4, "learning_rate": 1e-2},
                         eval={"steps": 8})
    result = train(config)
    after = result.eval_after
    assert after["eval_rewards/accuracies"] == 1.0 and after["eval_rewards/margins"] > 0
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]
    adapter = result.run_dir / "adapter"
    assert not (adapter / "ref").exists()  # the reference is the base model, not a saved copy
    scored = predict_file(str(result.run_dir), str(data), str(tmp_path / "scores.jsonl"))
    assert scored.metrics["reward_accuracy"] == 1.0 and scored.metrics["reward_margin"] > 0
    assert scored.metrics["logp_accuracy"] >= scored.metrics["base_logp_accuracy"]
    rows = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and rows[0]["chosen_reward"] > rows[0]["rejected_reward"]


def test_reference_is_base_with_adapters_disabled(tiny_config, tmp_path):
    """No 'ref' adapter and no reference model: TRL computes reference log-probs with adapters off."""
    from tunesmith.tasks import TASKS
    from tunesmith.training import runner

    made = {}
    original = TASKS.get("dpo").make_trainer

    def spy(parts):
        made["trainer"] = original(parts)
        raise KeyboardInterrupt  # stop before training; we only inspect the trainer

    config = tiny_config(data={"train": [str(pairs_file(tmp_path / "p.jsonl"))]}, task={"name": "dpo"})
    object.__setattr__(TASKS.get("dpo"), "make_trainer", spy)
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.train(config)
    finally:
        object.__setattr__(TASKS.get("dpo"), "make_trainer", original)
    trainer = made["trainer"]
    assert trainer.ref_model is None
    assert list(trainer.model.peft_config) == ["default"]


def test_identical_pair_is_reported_by_line_or_skipped(tiny_config, tmp_path):
    data = pairs_file(tmp_path / "pairs.jsonl", bad_line=3)
    config = tiny_config(data={"train": [str(data)]}, task={"name": "dpo"}, train={"max_steps": 1})
    with pytest.raises(DataError, match=r"pairs.jsonl:3: chosen and rejected are the same reply"):
        train(config)
    config = tiny_config(data={"train": [str(data)], "on_bad_row": "skip", "eval_ratio": 0.0}, task={"name": "dpo"},
                         train={"max_steps": 1}, output={"overwrite": True})
    result = train(config)
    report = json.loads((result.run_dir / "data_report.json").read_text())
    assert report["train"]["skipped_rows"] == 1 and report["train"]["rows"] == 15


@pytest.mark.parametrize("task", [{"name": "orpo"}, {"name": "simpo"}, {"name": "kto"}])
def test_orpo_simpo_kto_train_and_log_rewards(tiny_config, tmp_path, task):
    data = pairs_file(tmp_path / "pairs.jsonl", n=8)
    config = tiny_config(data={"train": [str(data)], "eval_ratio": 0.25}, task=task,
                         train={"max_steps": 3, "batch_size": 4, "learning_rate": 1e-2},
                         eval={"steps": 3})
    result = train(config)
    assert result.status == "succeeded"
    losses = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in losses)
    assert any(k.startswith("eval_rewards/") for k in result.eval_after), sorted(result.eval_after)
    assert (result.run_dir / "adapter" / "adapter_config.json").is_file()


def test_reward_model_learns_pair_order_and_scores_pairs(tiny_config, tmp_path):
    from tunesmith.inference.predict import predict_file

    data = pairs_file(tmp_path / "pairs.jsonl")
    config = tiny_config(data={"train": [str(data)], "eval_ratio": 0.25}, task={"name": "reward"},
                         train={"max_steps": 8, "batch_size": 4, "learning_rate": 1e-2},
                         eval={"steps": 8})
    result = train(config)
    assert result.eval_after["eval_accuracy"] == 1.0
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]
    scored = predict_file(str(result.run_dir), str(data), str(tmp_path / "scores.jsonl"))
    assert scored.metrics["pair_accuracy"] == 1.0 and scored.metrics["margin"] > 0


def test_pair_whose_prompt_fills_the_cutoff_is_dropped_and_reported(tmp_path):
    from tiny import tiny_tokenizer
    from tunesmith.config import validate_config
    from tunesmith.tasks.preference import build_pair_features

    rows = [{"prompt": "hello world " * 40, "chosen": "yes", "rejected": "no", "_origin": "f.jsonl:1"},
            {"prompt": "hello", "chosen": "yes " * 40, "rejected": "no", "_origin": "f.jsonl:2"}]
    config = validate_config({"task": {"name": "dpo"}, "data": {"cutoff_len": 32, "template": "chatml"}})
    features, report = build_pair_features(rows, tiny_tokenizer(), config)
    assert len(features) == 1 and report.dropped == ["f.jsonl:1"] and report.truncated == ["f.jsonl:2"]


def test_kto_rows_report_tokens_and_no_perplexity(tiny_config, tmp_path):
    rows = [{"prompt": f"what is {i} plus {i}?", "completion": f"{i} plus {i} is {2 * i}." if i % 2 else "go away.",
             "label": bool(i % 2)} for i in range(8)]
    data = tmp_path / "kto.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tiny_config(data={"train": [str(data)], "eval_ratio": 0.25}, task={"name": "kto"},
                         train={"max_steps": 2, "batch_size": 4}, eval={"steps": 2})
    result = train(config)
    report = json.loads((result.run_dir / "data_report.json").read_text())["train"]
    assert report["rows"] == 6 and report["tokens"] > report["trainable_tokens"] > 0
    logged = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert "eval_loss" in result.eval_after and any("eval_loss" in r for r in logged)
    # exp of a KTO loss is no perplexity: neither the results nor the logged metrics carry one
    assert "eval_perplexity" not in {**result.eval_before, **result.eval_after}
    assert not any("eval_perplexity" in r for r in logged)


def test_pair_scores_batched_by_length_match_one_row_at_a_time(tiny_model_dir):
    import torch

    from tunesmith.data.tokenize import IGNORE
    from tunesmith.models import load_model, load_tokenizer
    from tunesmith.tasks.batching import continuation_logps
    from tunesmith.tasks.collate import causal_lm_class

    tokenizer = load_tokenizer(tiny_model_dir)
    model = load_model(tiny_model_dir, causal_lm_class()).eval()
    texts = [("what is 2 plus 2?", " 4."), ("hi", " the quick brown fox jumps over the lazy dog"),
             ("who are you? tell me your name and what you do", " an assistant"), ("a", " b c")]
    pairs = [(tokenizer(p)["input_ids"], tokenizer(r)["input_ids"]) for p, r in texts]
    batched, counts = continuation_logps(model, tokenizer, pairs, batch_size=3)
    assert counts == [len(r) for _, r in pairs]
    for (prompt, reply), logp in zip(pairs, batched):  # each row alone, full log-softmax, no padding
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt + reply])).logits[0, :-1]
        labels = torch.tensor([IGNORE] * len(prompt) + reply)[1:]
        picked = torch.log_softmax(logits.float(), -1)[labels != IGNORE].gather(-1, labels[labels != IGNORE, None])
        assert logp == pytest.approx(picked.sum().item(), abs=1e-4)
