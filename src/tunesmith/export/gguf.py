"""gguf: a llama-architecture merged model as one GGUF file (f16 or q8_0), for llama.cpp & co.

Written with the `gguf` package (the tensor names and metadata keys llama.cpp reads) and
checked by loading the file back through transformers' GGUF loader and comparing logits.
The tokenizer goes in too (byte-level BPE: vocabulary, token types, merges, special ids),
with the run's chat template.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from tunesmith.export import ExportError, ExportOptions, ExportResult, register_exporter


class GgufOptions(ExportOptions):
    quant: Literal["f16", "q8_0"] = Field("q8_0", description="Weight type of the 2-D tensors.")


def _permute_for_rope(weights, n_head: int):
    """llama.cpp's rotary layout: reorder each head's rows from halves to interleaved pairs
    (transformers' GGUF loader applies the inverse when reading q/k back)."""
    rows = weights.shape[0]
    return (weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _tokenizer_fields(tokenizer, vocab_size: int) -> dict:
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model, pre = spec["model"], json.dumps(spec.get("pre_tokenizer"))
    if model.get("type") != "BPE" or "ByteLevel" not in pre:
        raise ExportError("gguf export writes byte-level BPE (GPT-2 style) tokenizers; this model's tokenizer "
                          f"is {model.get('type')} with pre-tokenizer {pre[:60]}; export --to merged instead")
    from gguf import TokenType

    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    added = {t.content: t.special for t in tokenizer.added_tokens_decoder.values()}
    tokens, types = [], []
    for i in range(vocab_size):  # the embedding may have more rows than the tokenizer has tokens
        token = by_id.get(i, f"[PAD{i}]")
        tokens.append(token)
        types.append(TokenType.UNUSED if i not in by_id else TokenType.CONTROL if added.get(token)
                     else TokenType.USER_DEFINED if token in added else TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return {"tokens": tokens, "types": types, "merges": merges}


def _add_metadata(writer, model, tokenizer, chat_template: str | None, quant: str) -> None:
    import gguf

    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    rope = getattr(c, "rope_parameters", None) or {"rope_theta": getattr(c, "rope_theta", 10000.0)}
    if rope.get("rope_type", "default") != "default":
        raise ExportError(f"gguf export supports default rotary embeddings, not rope_type {rope['rope_type']!r}")
    writer.add_name(Path(str(getattr(c, "_name_or_path", "") or "tunesmith-export")).name)
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_block_count(c.num_hidden_layers)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(c.rms_norm_eps))
    writer.add_vocab_size(c.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if quant == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    fields = _tokenizer_fields(tokenizer, c.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")  # llama.cpp's name for the GPT-2 split of a byte-level pre-tokenizer
    writer.add_token_list(fields["tokens"])
    writer.add_token_types(fields["types"])
    writer.add_token_merges(fields["merges"])
    for add, token_id in [(writer.add_bos_token_id, tokenizer.bos_token_id), (writer.add_eos_token_id, tokenizer.eos_token_id),
                          (writer.add_unk_token_id, tokenizer.unk_token_id), (writer.add_pad_token_id, tokenizer.pad_token_id)]:
        if token_id is not None:
            add(token_id)
    writer.add_add_bos_token(False)  # tunesmith's templates write BOS themselves when they need it
    if chat_template:
        writer.add_chat_template(chat_template)


def _add_tensors(writer, model, quant: str) -> None:
    import gguf
    import numpy as np

    c = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, c.num_hidden_layers)
    tied = getattr(c, "tie_word_embeddings", False)
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reuses token_embd when output.weight is absent
        base, suffix = hf_name.rsplit(".", 1)
        gguf_name = names.get_name(base)
        if gguf_name is None:
            raise ExportError(f"gguf export: no GGUF name for tensor {hf_name!r}")
        data = tensor.detach().float().numpy()
        if base.endswith("q_proj"):
            data = _permute_for_rope(data, c.num_attention_heads)
        elif base.endswith("k_proj"):
            data = _permute_for_rope(data, c.num_key_value_heads)
        if data.ndim == 1:  # norms and biases stay f32, as llama.cpp's converter does
            writer.add_tensor(f"{gguf_name}.{suffix}", data.astype(np.float32))
        elif quant == "q8_0" and data.shape[-1] % 32 == 0:  # q8_0 packs rows in blocks of 32
            packed = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(f"{gguf_name}.{suffix}", packed, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(f"{gguf_name}.{suffix}", data.astype(np.float16))


def write_llama_gguf(model, tokenizer, chat_template: str | None, path: Path, quant: str) -> None:
    import gguf

    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    _add_metadata(writer, model, tokenizer, chat_template, quant)
    _add_tensors(writer, model, quant)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@register_exporter("gguf", "One GGUF file (f16 or q8_0) of a llama-architecture merged model, for "
                   "llama.cpp/Ollama; checked by loading it back through transformers.",
                   options=GgufOptions, architectures=("llama",), folder_name=lambda o: f"gguf-{o.quant}")
def export_gguf(source, out_dir: Path, options: GgufOptions) -> ExportResult:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.export.chat_template import template_for_export
    from tunesmith.export.runtime import TorchRuntime

    model, tokenizer = source.merged_model(), source.tokenizer
    name = f"model-{options.quant}.gguf"
    jinja = template_for_export(source.loaded.template, tokenizer, source.config.data.system)
    write_llama_gguf(model, tokenizer, jinja or tokenizer.chat_template, out_dir / name, options.quant)
    start = time.perf_counter()
    loaded = AutoModelForCausalLM.from_pretrained(out_dir, gguf_file=name)
    seconds = time.perf_counter() - start
    same_tokens = _tokenizer_round_trip(AutoTokenizer.from_pretrained(out_dir, gguf_file=name), tokenizer)
    return ExportResult(TorchRuntime(loaded, tokenizer.pad_token_id), seconds, [name],
                        details={"quant": options.quant, "checked_with": "transformers gguf loader",
                                 "tokenizer_round_trip": same_tokens, "llama_cpp": "not installed (no wheel on PyPI)"},
                        logit_tolerance=None if options.quant == "q8_0" else 0.1)


def _tokenizer_round_trip(read_back, original) -> bool:
    """The tokenizer read from the GGUF must split the fixed prompts exactly as the original."""
    from tunesmith.export.source import PROMPTS

    texts = [*PROMPTS, "<|im_start|>user\nhi<|im_end|>\n"]
    same = all(read_back(t, add_special_tokens=False)["input_ids"] == original(t, add_special_tokens=False)["input_ids"]
               for t in texts)
    if not same:
        raise ExportError("gguf export failed its check: the tokenizer read back from the file splits text "
                          "differently from the original; nothing was written")
    return same
