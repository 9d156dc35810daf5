"""Exports of a tiny trained LoRA run: every format loads back, matches, and is reported."""

import json

import pytest
import torch

from inproc import exit_code
from tunesmith.errors import TunesmithError
from tunesmith.export.pipeline import run_export

FAST = {"new_tokens": 6}


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    """One LoRA run shared by the export tests (training it takes a few seconds)."""
    from tunesmith.config import validate_config
    from tunesmith.training.runner import train

    folder = tmp_path_factory.mktemp("export-run")
    rows = [{"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                          {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(16)]
    (folder / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = validate_config({
        "model": {"name_or_path": str(tiny_model_dir)},
        "data": {"train": [str(folder / "chat.jsonl")], "eval_ratio": 0.25, "template": "chatml"},
        "method": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        "train": {"max_steps": 8, "batch_size": 4, "learning_rate": 1e-2, "precision": "fp32", "save_steps": 100},
        "eval": {"before_training": False},
        "output": {"dir": str(folder / "run")},
    })
    return train(config).run_dir


def _ids():
    return torch.tensor([[5, 6, 7, 8, 9, 10, 11]])


def _adapter_logits(run):
    from tunesmith.inference.load import load_for_inference

    with torch.no_grad():
        return load_for_inference(str(run)).model(input_ids=_ids()).logits


def _check_report(run, folder, kind):
    report = json.loads((folder / "export_report.json").read_text())
    assert report["format"] == kind and report["size_bytes"] > 0
    speed = report["export"]
    assert speed["tokens_per_s"] > 0 and speed["latency_p95_s"] >= speed["latency_p50_s"]
    assert report["quality"]["eval_rows"] == 4 and report["quality"]["delta"] is not None
    rows = (run / "exports.md").read_text()
    assert f"| {kind} |" in rows and str(folder) in rows and (run / "exports.png").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "temp folder left behind"
    return report


def test_merged_loads_with_plain_transformers_and_matches_adapter(tiny_run):
    from transformers import AutoModelForCausalLM

    report = run_export(str(tiny_run), "merged", **FAST)
    folder = tiny_run / "exports" / "merged"
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        merged = model(input_ids=_ids()).logits
    torch.testing.assert_close(merged, _adapter_logits(tiny_run), atol=1e-4, rtol=0)
    report = _check_report(tiny_run, folder, "merged")
    assert report["parity"]["greedy_equal_prompts"] == report["parity"]["prompts"]
    assert abs(report["quality"]["delta"]) < 1e-4


def test_int8_dynamic_is_smaller_and_loads_through_tunesmith(tiny_run):
    from tunesmith.inference.load import load_for_inference

    report = run_export(str(tiny_run), "int8", options={"int8_mode": "dynamic"}, **FAST)
    folder = tiny_run / "exports" / "int8-dynamic"
    loaded = load_for_inference(str(folder))
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    assert any(isinstance(m, DynamicLinear) for m in loaded.model.modules())
    with torch.no_grad():
        logits = loaded.model(input_ids=_ids()).logits
    reference = _adapter_logits(tiny_run)
    assert 0 < (logits - reference).abs().max() < 0.5  # lossy, but close
    report = _check_report(tiny_run, folder, "int8")
    assert report["details"]["quantized_linear_layers"] == 2 * 7 + 1


def test_int8_weight_only_is_the_default_keeps_the_logits_and_is_smaller(tiny_run):
    """Weight-only int8 (activations fp32): logits within a weights-rounding tolerance of fp32,
    far closer than dynamic int8, and a file smaller than the fp32 merged model's."""
    from tunesmith.inference.load import load_for_inference
    from tunesmith.models.int8_linear import WeightOnlyInt8Linear

    report = run_export(str(tiny_run), "int8", **FAST)
    folder = tiny_run / "exports" / "int8"
    loaded = load_for_inference(str(folder))
    assert sum(isinstance(m, WeightOnlyInt8Linear) for m in loaded.model.modules()) == 2 * 7 + 1
    with torch.no_grad():
        logits = loaded.model(input_ids=_ids()).logits
    reference = _adapter_logits(tiny_run)
    diff = (logits - reference).abs().max()
    assert 0 < diff < 0.02 * reference.abs().max()
    report = _check_report(tiny_run, folder, "int8")
    assert report["details"]["mode"] == "weight-only" and report["details"]["activations"] == "fp32"
    assert abs(report["quality"]["delta"]) < 0.01 * report["quality"]["source"]
    assert report["size_vs_source"] < 0.7  # int8 Linear weights; the tiny model's fp32 embeddings are a large share


@pytest.mark.parametrize("structure", ["unstructured", "heads", "channels"])
def test_pruning_reaches_target_sparsity(tiny_run, structure):
    from transformers import AutoModelForCausalLM

    report = run_export(str(tiny_run), "pruned", options={"sparsity": 0.5, "structure": structure}, **FAST)
    folder = tiny_run / "exports" / f"pruned-{structure}-0.5"
    model = AutoModelForCausalLM.from_pretrained(folder)  # plain transformers loads every variant
    details = _check_report(tiny_run, folder, "pruned")["details"]
    assert details["achieved_sparsity"] == pytest.approx(0.5, abs=0.01)
    if structure == "unstructured":
        weight = model.model.layers[0].mlp.up_proj.weight
        assert (weight == 0).float().mean() == pytest.approx(0.5, abs=0.01)
    elif structure == "heads":  # 4 query heads in 2 KV groups -> 1 per group; q/o shrink, k/v stay
        assert model.config.num_attention_heads == 2 and model.config.num_key_value_heads == 2
        assert report["size_vs_source"] < 1
    else:
        assert model.config.intermediate_size == 32 and model.model.layers[1].mlp.down_proj.weight.shape[1] == 32
        assert report["size_vs_source"] < 1


def test_onnx_matches_pytorch_in_onnxruntime(tiny_run):
    report = run_export(str(tiny_run), "onnx", **FAST)
    folder = tiny_run / "exports" / "onnx"
    report = _check_report(tiny_run, folder, "onnx")
    assert report["export"]["runtime"] == "onnxruntime"
    assert report["parity"]["max_abs_logit_diff"] < 1e-3
    assert report["parity"]["greedy_equal_prompts"] == report["parity"]["prompts"]
    assert abs(report["quality"]["delta"]) < 1e-3
    # the graph runs with a batch size and length it was not traced with
    from tunesmith.export.onnx import OnnxRuntime

    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    assert OnnxRuntime(folder / "model.onnx").logits(ids, torch.ones_like(ids)).shape[:2] == (2, 3)


@pytest.mark.parametrize("quant", ["f16", "q8_0"])
def test_gguf_loads_back_through_transformers(tiny_run, quant):
    from transformers import AutoModelForCausalLM

    run_export(str(tiny_run), "gguf", options={"quant": quant}, **FAST)
    folder = tiny_run / "exports" / f"gguf-{quant}"
    report = _check_report(tiny_run, folder, "gguf")
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=f"model-{quant}.gguf")
    with torch.no_grad():
        logits = model(input_ids=_ids()).logits
    diff = (logits - _adapter_logits(tiny_run)).abs().max()
    assert diff < (5e-3 if quant == "f16" else 5e-2)
    assert report["details"]["tokenizer_round_trip"] is True
    if quant == "q8_0":
        if not (tiny_run / "exports" / "gguf-f16").is_dir():  # this case ran alone, or on another worker
            run_export(str(tiny_run), "gguf", options={"quant": "f16"}, **FAST)
        f16 = json.loads((tiny_run / "exports" / "gguf-f16" / "export_report.json").read_text())
        assert report["size_bytes"] < f16["size_bytes"]


def test_gguf_for_bert_names_supported_choices(tmp_path, capsys):
    from transformers import BertConfig, BertForMaskedLM

    BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32)).save_pretrained(tmp_path / "bert")
    with pytest.raises(TunesmithError, match="does not support 'bert'.*supported architectures: llama"):
        run_export(str(tmp_path / "bert"), "gguf")
    assert exit_code("export", str(tmp_path / "bert"), "--to", "gguf") == 2
    err = capsys.readouterr().err
    assert "supported architectures: llama" in err and "Traceback" not in err
    assert not (tmp_path / "bert" / "exports").exists()


@pytest.mark.parametrize("sparsity", ["0", "1", "1.5", "-0.2"])
def test_pruning_target_outside_open_unit_interval_exits_2(tiny_run, sparsity, capsys):
    assert exit_code("export", str(tiny_run), "--to", "pruned", "--sparsity", sparsity) == 2
    err = capsys.readouterr().err
    assert "sparsity" in err and ("greater than 0" in err or "less than 1" in err)


def test_unknown_format_and_foreign_option_are_named(tiny_run, capsys):
    assert exit_code("export", str(tiny_run), "--to", "tflite") == 2
    assert "gguf, int8, merged, onnx, pruned" in capsys.readouterr().err
    assert exit_code("export", str(tiny_run), "--to", "int8", "--quant", "q8_0") == 2
    assert "quant" in capsys.readouterr().err


def test_failed_export_leaves_nothing_at_output(tiny_run, monkeypatch):
    from tunesmith.export import EXPORTERS

    spec = EXPORTERS.get("merged")

    def half_then_crash(source, out_dir, options):
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    from dataclasses import replace

    monkeypatch.setitem(EXPORTERS._items, "merged", replace(spec, export=half_then_crash))
    target = tiny_run.parent / "crashed"
    with pytest.raises(TunesmithError, match="merged export failed: RuntimeError: disk full; nothing was written"):
        run_export(str(tiny_run), "merged", out=str(target), **FAST)
    assert not target.exists()
    assert not [p for p in tiny_run.parent.iterdir() if p.name.startswith(".crashed")]


def test_recovery_fine_tune_lowers_loss_and_keeps_sparsity(tiny_run):
    options = {"sparsity": 0.7, "structure": "unstructured", "recover_steps": 4}
    recovered = run_export(str(tiny_run), "pruned", out=str(tiny_run.parent / "p-recovered"), options=options, **FAST)
    recovery = recovered["details"]["recovery"]  # eval losses of the pruned model before/after the fine-tune
    assert recovery["steps"] == 4 and recovery["eval_loss_after"] < recovery["eval_loss_before"]
    assert recovered["quality"]["export"] < recovery["eval_loss_before"]  # still better after re-masking
    assert recovered["details"]["achieved_sparsity"] == pytest.approx(0.7, abs=0.01)
