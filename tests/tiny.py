"""Tiny random models and a byte-level tokenizer built in code: tests never download."""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_CORPUS = [
    "the quick brown fox jumps over the lazy dog", "who are you? i am an assistant",
    "hello world, what is your name", "instruction input output response",
    "你好，我是一个助手。今天天气很好。", "0123456789 + - * / = ( ) [ ] { } : ; , .",
]


def tiny_tokenizer(chat_template: str | None = CHATML):
    """A byte-level BPE tokenizer (any text encodes) with chatml special tokens."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    bpe.train_from_iterator(_CORPUS * 20, vocab_size=400, min_frequency=1, special_tokens=specials)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>", eos_token="<|im_end|>",
        pad_token="<pad>", unk_token="<|endoftext|>",
    )
    tok.chat_template = chat_template
    return tok


def tiny_llama(vocab_size: int, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def save_tiny_llama(path: Path, seed: int = 0) -> Path:
    """A tiny llama + tokenizer saved as a Hugging Face directory."""
    tok = tiny_tokenizer()
    model = tiny_llama(len(tok), seed)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
