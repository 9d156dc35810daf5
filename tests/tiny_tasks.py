"""Tiny random encoder / decoder / seq2seq models for the task tests, built in code."""

from __future__ import annotations

from pathlib import Path

from tiny import tiny_tokenizer


def save_tiny_bert(path: Path, seed: int = 0) -> Path:
    """A 2-layer BERT with the tiny byte-level tokenizer (the head is added per task)."""
    import torch
    from transformers import BertConfig, BertModel

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=256, pad_token_id=tok.pad_token_id)
    BertModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save_tiny_t5(path: Path, seed: int = 0) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                      num_heads=4, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      decoder_start_token_id=tok.pad_token_id)
    T5ForConditionalGeneration(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


POSITIVE = ["quick", "brown", "fox", "jumps", "world", "hello"]
NEGATIVE = ["lazy", "dog", "assistant", "name", "who", "what"]


def sentiment_rows(n: int, start: int = 0) -> list[tuple[str, str]]:
    """(sentence, label name) rows that a tiny model separates in a few steps."""
    rows = []
    for i in range(start, start + n):
        words = POSITIVE if i % 2 else NEGATIVE
        label = "positive" if i % 2 else "negative"
        rows.append((f"{words[i % 6]} {words[(i + 1) % 6]} {words[(i + 2) % 6]}", label))
    return rows


def write_tsv(path: Path, header: list[str], rows: list[tuple]) -> Path:
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path
