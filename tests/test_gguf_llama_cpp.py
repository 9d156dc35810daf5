"""The GGUF export loads in llama.cpp itself (llama-cpp-python, where it is installed: it is built
from source and is a benchmark-only dependency): same tokens, logits within f16 rounding."""

from __future__ import annotations

import pytest
import torch

from tiny import save_tiny_llama

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (benchmark-only, see "
                                "docs/serving.md)")

TEXT = "<|im_start|>user\nwho are you? the quick brown fox<|im_end|>\n<|im_start|>assistant\n"


def test_llama_cpp_reads_the_gguf_export_as_transformers_does(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.export.pipeline import run_export

    model_dir = save_tiny_llama(tmp_path / "tiny")
    run_export(str(model_dir), "gguf", str(tmp_path / "gguf"), options={"quant": "f16"}, new_tokens=2)
    llm = llama_cpp.Llama(model_path=str(tmp_path / "gguf" / "model-f16.gguf"), n_ctx=128, n_threads=1,
                          logits_all=True, verbose=False)
    ids = AutoTokenizer.from_pretrained(model_dir)(TEXT, add_special_tokens=False)["input_ids"]
    assert llm.tokenize(TEXT.encode(), add_bos=False, special=True) == ids
    llm.eval(ids)
    with torch.no_grad():
        want = AutoModelForCausalLM.from_pretrained(model_dir)(input_ids=torch.tensor([ids])).logits[0]
    got = torch.tensor(llm.scores[: len(ids)])
    assert (got - want).abs().max() < 5e-3
