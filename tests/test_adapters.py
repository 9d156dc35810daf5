"""Several adapters on one base: load together and switch per call; merge with given weights."""

import pytest
import torch

from tunesmith.adapters.multi import load_adapter_set
from tunesmith.errors import ConfigError
from tunesmith.inference.load import load_for_inference
from tunesmith.training.runner import train

IDS = {"input_ids": torch.tensor([[5, 6, 7, 8, 9, 10]])}


def _logits(model):
    with torch.no_grad():
        return model(**IDS).logits


def test_second_adapter_on_same_base_switches_per_call(tiny_config, tmp_path):
    fast = {"max_steps": 4, "threads": 1, "learning_rate": 2e-2}
    first = train(tiny_config(output={"dir": str(tmp_path / "a")}, train=fast)).run_dir
    second = train(tiny_config(output={"dir": str(tmp_path / "b")}, train={**fast, "seed": 7},
                               method={"r": 2})).run_dir
    adapters = load_adapter_set({"a": first, "b": second})
    assert adapters.names == ["a", "b"]
    alone = {n: _logits(load_for_inference(str(p)).model) for n, p in (("a", first), ("b", second))}
    for name in ("b", "a", "b"):  # switching back and forth gives each adapter's own output
        with adapters.using(name) as model:
            torch.testing.assert_close(_logits(model), alone[name], atol=1e-6, rtol=0)
    assert not torch.allclose(alone["a"], alone["b"], atol=1e-4)
    with adapters.using("base") as model:
        base = _logits(model)
    assert not torch.allclose(base, alone["a"], atol=1e-4)
    assert adapters.model.active_adapter == "a"  # restored after each call
    replies = adapters.reply("b", [[{"role": "user", "content": "what is 2 plus 2?"}]], max_new_tokens=4)
    assert len(replies) == 1 and isinstance(replies[0], str)
    with pytest.raises(ConfigError, match="unknown adapter 'c'"), adapters.using("c"):
        pass


@pytest.fixture
def two_loras(tiny_model_dir, tmp_path):
    """Two random (non-zero) rank-2 LoRA adapters on the tiny llama, saved as PEFT folders."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                                init_lora_weights=False))
        for n, p in model.named_parameters():
            if "lora_B" in n:  # big enough that the adapters clearly differ
                p.data.normal_(0, 0.5)
        model.save_pretrained(tmp_path / f"lora{seed}")
        paths.append(tmp_path / f"lora{seed}")
    return paths


def _deltas(path) -> dict[str, torch.Tensor]:
    """Weight updates of a merged adapter on its base, per module."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tunesmith.adapters.sources import adapter_source

    source = adapter_source(path)
    base = AutoModelForCausalLM.from_pretrained(source.base)
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    merged = PeftModel.from_pretrained(base, source.path).merge_and_unload()
    return {n: p.detach() - before[n] for n, p in merged.named_parameters()
            if not torch.equal(p, before[n])}


def _weighted_sum(deltas, weights):
    return sum(w * d for w, d in zip(weights, deltas, strict=True))


def _ties_at_full_density(deltas, weights):
    """TIES (Yadat et al. 2023) without trimming: elect each entry's sign from the summed updates,
    average the weighted updates that agree with it."""
    stacked = torch.stack(deltas)
    sign = torch.sign(stacked.sum(dim=0))
    agree = (torch.sign(stacked) == sign).float()
    weighted = stacked * torch.tensor(weights).view(-1, 1, 1)
    merged = (weighted * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1)
    # sign election makes the update full-rank; the new adapter keeps its best rank-4 (2 + 2) part
    u, s, vh = torch.linalg.svd(merged)
    return u[:, :4] @ torch.diag(s[:4]) @ vh[:4]


@pytest.mark.parametrize("how, weights, expected", [
    ("linear", [1.0, 0.0], _weighted_sum),  # linear mixes factors: exact for one non-zero weight
    ("ties", [0.6, 0.4], _ties_at_full_density),
    ("dare", [0.3, 0.7], _weighted_sum),  # density 1 keeps everything: plain weighted sum
    ("cat", [0.5, -0.25], _weighted_sum),
])
def test_merge_follows_the_weights(two_loras, tmp_path, how, weights, expected):
    from tunesmith.cli.main import run

    out = tmp_path / f"merged-{how}"
    run(["adapters", "merge", *map(str, two_loras), "--how", how, "--weights",
         ",".join(map(str, weights)), "--density", "1", "--out", str(out)])
    a, b = _deltas(two_loras[0]), _deltas(two_loras[1])
    merged = _deltas(out / "adapter")
    assert set(merged) == set(a) == set(b)
    for name in merged:
        torch.testing.assert_close(merged[name], expected([a[name], b[name]], weights),
                                   atol=1e-5, rtol=1e-4)
        assert not torch.allclose(merged[name], a[name]) or weights[1] == 0
        assert not torch.allclose(merged[name], b[name])
    loaded = load_for_inference(str(out))  # a run directory that chat/generate can use
    assert loaded.model.peft_config["default"].peft_type.value == "LORA"


def test_dare_with_dropout_differs_from_both_inputs(two_loras, tmp_path):
    from tunesmith.adapters.merge import merge_adapters

    out = merge_adapters(two_loras, [0.5, 0.5], "dare", tmp_path / "dare", density=0.5, seed=3)
    merged = _logits(load_for_inference(str(out)).model)
    for source in two_loras:
        assert not torch.allclose(merged, _logits(load_adapter_set({"x": source}).model), atol=1e-3)


def test_bad_merge_requests(two_loras, tmp_path):
    from tunesmith.adapters.merge import merge_adapters

    with pytest.raises(ConfigError, match="--how 'avg': choose one of linear, cat"):
        merge_adapters(two_loras, [0.5, 0.5], "avg", tmp_path / "x")
    with pytest.raises(ConfigError, match="--weights: 1 weights for 2 adapters"):
        merge_adapters(two_loras, [1.0], "linear", tmp_path / "x")
