"""Continual and multi-task fine-tuning on a tiny llama (docs/continual.md): replay shares,
regularisers' penalties, O-LoRA's orthogonal new adapter, task sampling, the lineage of runs,
forgetting figures, and bad configs."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from inproc import fails_in_one_line
from tunesmith.cli.main import run as cli
from tunesmith.continual.regularisers import REGULARISERS, AnchorContext
from tunesmith.data.multitask import mix_tasks, task_shares
from tunesmith.data.replay import replay_records
from tunesmith.tasks import TASKS
from tunesmith.training.runner import train


def _chat_rows(path, n, word, start=0):
    rows = [{"messages": [{"role": "user", "content": f"{word} {i}?"},
                          {"role": "assistant", "content": f"{word} {i} is {i * 3}."}]}
            for i in range(start, start + n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def second_file(tmp_path):
    return _chat_rows(tmp_path / "second.jsonl", 12, "hello world")


def _first_run(tiny_config, tmp_path):
    return train(tiny_config(output={"dir": str(tmp_path / "first")})).run_dir


# --- replay ---------------------------------------------------------------------------------------

def test_replay_mixes_the_stated_share(tiny_config, tmp_path, second_file):
    old = _chat_rows(tmp_path / "old.jsonl", 50, "old")
    config = tiny_config(data={"train": [str(second_file)], "replay": {"from": [str(old)], "ratio": 0.2}})
    new_rows = 40
    rows, report = replay_records(config.data.replay, new_rows, TASKS.get("sft"), seed=1)
    replayed = sum(r["_origin"].startswith(str(old)) for r in rows)
    assert replayed == len(rows) == report["rows"] == 10  # 10 / (40 + 10) = 20%
    assert replayed / (new_rows + replayed) == pytest.approx(0.2)
    assert len({r["_origin"] for r in rows}) == replayed  # drawn without repeats


def test_replay_per_task_draws_the_same_from_each_source(tiny_config, tmp_path, second_file):
    a, b = _chat_rows(tmp_path / "a.jsonl", 40, "a"), _chat_rows(tmp_path / "b.jsonl", 8, "b")
    config = tiny_config(data={"replay": {"from": [str(a), str(b)], "ratio": 0.5, "strategy": "per_task"}})
    rows, report = replay_records(config.data.replay, 12, TASKS.get("sft"), seed=0)
    assert {s: v["drawn"] for s, v in report["sources"].items()} == {str(a): 6, str(b): 6}
    assert sum(r["_origin"].startswith(str(b)) for r in rows) == 6


def test_replay_from_a_run_trains_and_is_reported(tiny_config, tmp_path, second_file):
    first = _first_run(tiny_config, tmp_path)
    config = tiny_config(data={"train": [str(second_file)], "replay": {"from": str(first), "ratio": 0.25}},
                         output={"dir": str(tmp_path / "second")})
    result = train(config)
    report = json.loads((result.run_dir / "data_report.json").read_text())["replay"]
    # the first run's 9 training rows (12 minus its 25% eval split) are the pool; 9 new rows -> 3 replayed
    assert report["sources"][str(first)] == {"available": 9, "drawn": 3}
    assert report["share"] == pytest.approx(0.25)


# --- regularisers ---------------------------------------------------------------------------------

def _lora_model(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))


def _features(n=4):
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n):
        ids = torch.randint(5, 300, (10,), generator=g).tolist()
        rows.append({"input_ids": ids, "attention_mask": [1] * 10, "labels": ids})
    return rows


@pytest.mark.parametrize("name", ["ewc", "l2-sp"])
def test_penalty_is_zero_at_the_start_and_pulls_back(name, tiny_model_dir, tmp_path):
    from tunesmith.continual.regularisers import trainable

    model = _lora_model(tiny_model_dir)
    reg = REGULARISERS.get(name)
    cfg = reg.config_class(strength=2.0)
    penalty = reg.anchor(model, cfg, AnchorContext(tmp_path, None, lambda n: _features(n)))
    assert float(penalty(model)) == 0.0
    start = [p.detach().clone() for _, p in trainable(model)]
    with torch.no_grad():
        for _, p in trainable(model):
            p.add_(torch.randn_like(p) * 0.1)
    value = penalty(model)
    assert float(value) > 0
    value.backward()
    grads = [p.grad for _, p in trainable(model)]
    dot = sum(((p.detach() - s) * g).sum() for (_, p), s, g in zip(trainable(model), start, grads))
    assert float(dot) > 0  # a descent step (minus the gradient) moves back toward the start
    if name == "ewc":
        assert (tmp_path / "continual" / "ewc_fisher.safetensors").is_file()


def test_ewc_weighs_weights_by_the_old_task_fisher(tiny_model_dir):
    from tunesmith.continual.regularisers.ewc import diagonal_fisher

    model = _lora_model(tiny_model_dir)
    fisher = diagonal_fisher(model, _features(3))
    flat = torch.cat([f.flatten() for f in fisher])
    assert bool((flat >= 0).all()) and float(flat.max()) > 0 and float(flat.std()) > 0


# --- O-LoRA ---------------------------------------------------------------------------------------

def _file_hash(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _old_new_products(first, second, r_old):
    from safetensors.torch import load_file

    old = load_file(str(first / "adapter" / "adapter_model.safetensors"))
    both = load_file(str(second / "adapter" / "adapter_model.safetensors"))
    norms = []
    for key, a_old in old.items():
        if ".lora_A." in key:
            a = both[key]
            assert torch.equal(a[:r_old], a_old)  # the earlier adapter, bit for bit
            b_key = key.replace(".lora_A.", ".lora_B.")
            assert torch.equal(both[b_key][:, :r_old], old[b_key])
            a_new = a[r_old:]
            norms.append(torch.linalg.norm(a_old @ a_new.T) / (torch.linalg.norm(a_old) * torch.linalg.norm(a_new)))
    return max(norms)


def test_olora_trains_an_orthogonal_adapter_and_keeps_the_old_one(tiny_config, tmp_path, second_file):
    first = _first_run(tiny_config, tmp_path)
    before = _file_hash(first / "adapter" / "adapter_model.safetensors")

    def second(name, strength):
        return train(tiny_config(model={"from_run": str(first)}, data={"train": [str(second_file)]},
                                 train={"max_steps": 30, "learning_rate": 2e-2,
                                        "regulariser": {"name": "o-lora", "strength": strength}},
                                 output={"dir": str(tmp_path / name)})).run_dir

    with_penalty, without = second("olora", 5.0), second("olora0", 0.0)
    assert _file_hash(first / "adapter" / "adapter_model.safetensors") == before
    cfg = json.loads((with_penalty / "adapter" / "adapter_config.json").read_text())
    assert cfg["r"] == 8  # 4 earlier + 4 new, one plain LoRA adapter for the original base
    orthogonal, free = _old_new_products(first, with_penalty, 4), _old_new_products(first, without, 4)
    assert orthogonal < 0.05 < free
    # the combined adapter loads like any run and reproduces the trained model's eval loss
    from tunesmith.inference.load import load_for_inference

    assert load_for_inference(str(with_penalty)).model is not None


# --- multi-task sampling ----------------------------------------------------------------------------

def test_temperature_sampling_draws_shares_of_n_to_the_one_over_t():
    by_task = {"big": ([{"i": i} for i in range(900)], []), "small": ([{"i": i} for i in range(100)], [])}
    for sampling, temperature, expected in (("temperature", 2.0, (30, 10)), ("size", 1.0, (900, 100)),
                                            ("equal", 1.0, (1, 1)), ("temperature", 1e9, (1, 1))):
        mixed, report = mix_tasks(by_task, sampling, temperature, seed=0)
        big = report["per_task"]["big"]["drawn"]
        share = big / len(mixed)
        assert share == pytest.approx(expected[0] / sum(expected), abs=0.01), sampling
    assert task_shares({"a": 100, "b": 100}, "size", weights={"a": 3.0}) == {"a": 0.75, "b": 0.25}


def test_multi_task_run_reports_each_task_eval(tiny_config, tmp_path, chat_file, second_file):
    config = tiny_config(data={"train": [], "tasks": [{"name": "sums", "train": str(chat_file)},
                                                      {"name": "hello", "train": str(second_file)}],
                               "sampling": "temperature", "temperature": 2.0})
    result = train(config)
    for key in ("eval_sums_loss", "eval_hello_loss", "eval_loss"):
        assert key in result.eval_before and key in result.eval_after
    assert result.eval_after["eval_sums_loss"] < result.eval_before["eval_sums_loss"]
    report = json.loads((result.run_dir / "data_report.json").read_text())["tasks"]
    assert set(report["per_task"]) == {"sums", "hello"}
    metrics = (result.run_dir / "metrics.jsonl").read_text()
    assert "eval_hello_loss" in metrics  # measured in the loop, not only before/after


# --- continue from a run: lineage, forgetting ---------------------------------------------------

def test_lineage_and_forgetting_of_a_chain(tiny_config, tmp_path, second_file, capsys, monkeypatch):
    from tunesmith.cli.output import stdout

    monkeypatch.setattr(stdout, "width", 400)  # whole tables, not folded into a terminal's width
    first = _first_run(tiny_config, tmp_path)
    second = train(tiny_config(model={"from_run": str(first)}, data={"train": [str(second_file)]},
                               train={"regulariser": {"name": "l2-sp", "strength": 1.0}},
                               output={"dir": str(tmp_path / "second")})).run_dir
    third_file = _chat_rows(tmp_path / "third.jsonl", 12, "the quick brown fox")
    third = train(tiny_config(model={"from_run": str(second)}, data={"train": [str(third_file)]},
                              output={"dir": str(tmp_path / "third")})).run_dir
    results = json.loads((third / "results.json").read_text())
    found = results["forgetting"]
    assert set(found["earlier_tasks"]) == {"first", "second"}  # every earlier task of the chain
    old = found["earlier_tasks"]["first"]
    assert old["before"] == results["eval_before"]["eval_old_first_loss"]
    assert old["after"] == results["eval_after"]["eval_old_first_loss"]
    gain = results["eval_before"]["eval_loss"] - results["eval_after"]["eval_loss"]
    assert found["forward_gain"] == pytest.approx(gain)
    assert "backward_transfer" in found and "## Forgetting" in (third / "README.md").read_text()

    cli(["runs", "lineage", str(third), "--json"])
    steps = json.loads(capsys.readouterr().out)
    assert [s["run"] for s in steps] == [str(p.resolve()) for p in (first, second, third)]
    hashes = [json.loads((p / "data_report.json").read_text())["data_hash"] for p in (first, second, third)]
    assert [s["data_hash"] for s in steps] == hashes and len(set(hashes)) == 3
    assert steps[1]["regulariser"] == "l2-sp"

    cli(["runs", "lineage", str(third)])
    table = capsys.readouterr().out
    assert all(h in table for h in hashes)

    cli(["runs", "compare", str(second), str(third), "-o", str(tmp_path / "c.png")])
    out = capsys.readouterr().out
    assert "backward" in out and "forward" in out
    assert f"{found['backward_transfer']:.4g}" in out


# --- bad configs: one line, exit code 2 ---------------------------------------------------------

@pytest.mark.parametrize("override, fragments", [
    ("data.replay={from: old.jsonl, ratio: 1.5}", ("data.replay.ratio", "1.5")),
    ("train.regulariser=ewk", ("train.regulariser", "ewk", "ewc")),
    ("model.from_run=runs/nowhere", ("model.from_run", "runs/nowhere", "not a run directory")),
])
def test_bad_continual_configs_are_one_line_errors(override, fragments, tmp_path, chat_file, tiny_model_dir, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {{name_or_path: {tiny_model_dir}}}\ndata: {{train: {chat_file}}}\n"
                      f"output: {{dir: {tmp_path / 'out'}}}\n")
    fails_in_one_line(capsys, "train", config, override, fragments=fragments)
