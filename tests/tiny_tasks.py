"""Tiny random encoder / decoder / seq2seq models for the task tests, built in code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


# --- one tiny example per registered task (tests/test_tasks_contract.py runs every task on it) ---
def _chat(i: int) -> dict:
    return {"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                         {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]}


def _pair(i: int) -> dict:
    return {"prompt": f"what is {i} plus {i}?", "chosen": f"{i} plus {i} is {2 * i}.",
            "rejected": "i do not know, go away."}


def _qa(i: int) -> dict:
    name = ("fox", "dog", "cat", "owl")[i % 4]
    context = f"the quick brown {name} jumps over the lazy wall."
    return {"id": str(i), "question": "who jumps?", "context": context,
            "answers": {"text": [name], "answer_start": [context.index(name)]}}


def _sentiment(i: int) -> dict:
    sentence, label = sentiment_rows(1, start=i)[0]
    return {"sentence": sentence, "label": label}


def _llama(path: Path) -> Path:
    from tiny import save_tiny_llama

    return save_tiny_llama(path)


@dataclass(frozen=True)
class TinyTask:
    """A tiny model and four rows a task learns from in a few steps, and the run config's task section.
    `other_rows`: more layouts the task reads, and rows it must turn down (tests/test_validate_tasks.py
    checks that `data validate` and training agree on each; generic bad rows are added there)."""

    make_model: Callable[[Path], Path]
    row: Callable[[int], dict]  # row i of the training file (jsonl)
    task: dict
    other_rows: tuple = ()


HH = {"chosen": "\n\nHuman: 2 + 3?\n\nAssistant: 5", "rejected": "\n\nHuman: 2 + 3?\n\nAssistant: 6"}
PAIR_ROWS = (HH, {"prompt": "2 + 3?", "chosen": "5", "rejected": "5"},  # an HH transcript; the same reply twice
             {"chosen": "\n\nHuman: hi\n\nAssistant: yes", "rejected": "\n\nHuman: bye\n\nAssistant: no"},
             {"instruction": "2 + 3?", "chosen": "5"})
KTO_ROWS = (*PAIR_ROWS, {"messages": [{"role": "user", "content": "2 + 3?"}, {"role": "assistant", "content": "5"}],
                         "label": True},  # LLaMA-Factory KTO, then TRL unpaired with a label that is not a bool
            {"prompt": "2 + 3?", "completion": "6", "label": "no"},
            {"messages": [{"role": "user", "content": "2 + 3?"}], "label": False})
SENTIMENT_ROWS = ({"sentence": "", "label": "positive"}, {"sentence": "a fine film"},
                  {"sentence": "a fine film", "label": None}, {"text": "a fine film", "label": "positive"})


TINY_TASKS: dict[str, TinyTask] = {
    "sft": TinyTask(_llama, _chat, {"name": "sft"}, (
        [{"role": "user", "content": "2 + 3?"}, {"role": "assistant", "content": "5"}],
        {"messages": [{"role": "assistant", "content": "5"}]}, {"text": "plain text"},
        {"messages": [{"role": "user", "content": "2 + 3?"}, {"role": "assistant", "content": ""}]})),
    "pretrain": TinyTask(_llama, lambda i: {"text": f"the quick brown fox number {i} jumps over the lazy dog."},
                         {"name": "pretrain"}, ({"text": ""}, {"text": 5}, _chat(1))),
    "dpo": TinyTask(_llama, _pair, {"name": "dpo"}, PAIR_ROWS),
    "orpo": TinyTask(_llama, _pair, {"name": "orpo"}, PAIR_ROWS),
    "simpo": TinyTask(_llama, _pair, {"name": "simpo"}, PAIR_ROWS),
    "kto": TinyTask(_llama, _pair, {"name": "kto"}, KTO_ROWS),
    "reward": TinyTask(_llama, _pair, {"name": "reward"}, PAIR_ROWS),
    "label_words": TinyTask(_llama, _sentiment, {"name": "label_words", "text_column": "sentence",
                                                 "prompt": "{text}"}, SENTIMENT_ROWS),
    "classification": TinyTask(save_tiny_bert, _sentiment, {"name": "classification", "text_column": "sentence"},
                               SENTIMENT_ROWS),
    "qa": TinyTask(save_tiny_bert, _qa, {"name": "qa"}, (
        {"question": "who?", "context": "the fox jumps.", "answers": "owl"},
        {"question": "", "context": "the fox jumps.", "answers": "fox"},
        {"question": "who?", "context": "the fox jumps.", "answers": "fox"},
        {"data": [{"paragraphs": [{"context": "the owl sings.", "qas": [
            {"id": "a", "question": "who sings?", "answers": [{"text": "owl", "answer_start": 4}]},
            {"id": "b", "question": "who sings?", "answers": [{"text": "cat", "answer_start": 0}]}]}]}]})),
    "seq2seq": TinyTask(save_tiny_t5, lambda i: {"source": f"what is {i} plus {i}?", "target": f"{2 * i}"},
                        {"name": "seq2seq", "max_new_tokens": 8},
                        ({"source": "2 + 3?"}, {"source": "2 + 3?", "target": ""}, {"text": "2 + 3?"})),
}
