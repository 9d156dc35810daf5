"""Real weights: SmolLM2-135M (llama, GQA, tied embeddings, real BPE tokenizer) through GGUF."""

import json

import pytest


@pytest.mark.slow
def test_smollm_gguf_f16_round_trip(tmp_path):
    from tunesmith.export.pipeline import run_export

    gguf = run_export("smollm2-135m-instruct", "gguf", out=str(tmp_path / "gguf"), options={"quant": "f16"},
                      new_tokens=4)
    assert gguf["details"]["tokenizer_round_trip"] is True
    assert gguf["parity"]["max_abs_logit_diff"] < 0.1  # f16 weights, fp32 compute (0.04 measured)
    assert gguf["parity"]["greedy_equal_prompts"] >= gguf["parity"]["prompts"] - 1
    report = json.loads((tmp_path / "gguf" / "export_report.json").read_text())
    assert report["size_vs_source"] < 0.55 and report["export"]["tokens_per_s"] > 0
    assert "| gguf |" in (tmp_path / "exports.md").read_text()  # a plain model's rows go beside the export
