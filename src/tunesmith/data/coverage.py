"""Can the model's tokenizer read the data? The share of tokens it could not map to a word piece.

Two kinds of tokenizer fail differently on a language their vocabulary lacks:
- WordPiece / unigram vocabularies (BERT, MiniLM, T5) turn an unknown character into the unknown
  token (`[UNK]`): the text is gone, the model sees the same id for every such character.
- Byte-level BPE (GPT-2, SmolLM2, Llama 3, Qwen) and byte-fallback SentencePiece (Llama 2) never
  lose text: a character without a token of its own is spelled as 2-4 byte tokens, none of which
  decodes to a character by itself. The model then reads a language it was not trained on, one
  byte at a time (SmolLM2 spells a Chinese character this way; Qwen has most of them whole).
Both count as unreadable here: the unknown token, and tokens that decode to no whole character.
Above `UNREADABLE_SHARE` of a file's tokens the run warns, naming the file and the fix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

UNREADABLE_SHARE = 0.05
SAMPLE_ROWS = 2000  # rows per file tokenized for the check: enough for a share, cheap on big files


@dataclass
class Coverage:
    file: str
    tokens: int = 0
    unknown: int = 0  # the tokenizer's unknown token
    byte_pieces: int = 0  # tokens that are pieces of a character's bytes

    @property
    def share(self) -> float:
        return (self.unknown + self.byte_pieces) / self.tokens if self.tokens else 0.0

    def message(self, model: str) -> str:
        """One line, without the file (the caller puts it first)."""
        what = " + ".join(part for part in (
            f"{self.unknown:,} unknown" if self.unknown else "",
            f"{self.byte_pieces:,} byte pieces of characters" if self.byte_pieces else "") if part)
        return (f"{self.share:.0%} of the tokens ({what} of {self.tokens:,}) are text that the tokenizer of "
                f"{model} cannot read; use a model whose vocabulary covers the data's language "
                "(`tunesmith models list`)")

    def as_dict(self, model: str) -> dict:
        return {"file": self.file, "tokens": self.tokens, "unknown": self.unknown, "byte_pieces": self.byte_pieces,
                "unreadable_share": round(self.share, 4), "message": f"{self.file}: {self.message(model)}"}


def texts(value) -> Iterator[str]:
    """Every string inside a row (message contents, columns ...), skipping tunesmith's `_` keys."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if not str(key).startswith("_"):
                yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


def coverage(tokenizer, file: str, strings: list[str]) -> Coverage:
    counts: Counter[int] = Counter()
    for ids in tokenizer(strings, add_special_tokens=False, verbose=False)["input_ids"] if strings else []:
        counts.update(ids)
    pieces = byte_pieces(tokenizer, counts)
    unknown = tokenizer.unk_token_id
    return Coverage(file, sum(counts.values()), counts.get(unknown, 0) if unknown is not None else 0,
                    sum(counts[i] for i in pieces))


def byte_pieces(tokenizer, ids: Iterable[int]) -> set[int]:
    """The ids that decode to no whole character (U+FFFD in their text): bytes of a character the
    vocabulary has no token for. Special tokens never count."""
    special = set(tokenizer.all_special_ids)
    candidates = [i for i in ids if i not in special]
    decoded = tokenizer.batch_decode([[i] for i in candidates]) if candidates else []
    return {i for i, text in zip(candidates, decoded) if "\ufffd" in text}


def unreadable_files(rows: Iterable[tuple[str, object]], tokenizer) -> list[Coverage]:
    """Coverage of each file of `rows` ((origin "file:line", row) pairs, records or raw rows),
    from its first SAMPLE_ROWS rows; those above UNREADABLE_SHARE."""
    by_file: dict[str, list[str]] = {}
    seen: Counter[str] = Counter()
    for origin, row in rows:
        file = str(origin).rsplit(":", 1)[0]
        if seen[file] < SAMPLE_ROWS:
            seen[file] += 1
            by_file.setdefault(file, []).extend(t for t in texts(row) if t.strip())
    found = [coverage(tokenizer, file, strings) for file, strings in by_file.items()]
    return [c for c in found if c.share > UNREADABLE_SHARE]


def unreadable_records(records: list[dict], tokenizer, model: str) -> list[dict]:
    """`unreadable_files` of canonical records, as data_report.json entries."""
    found = unreadable_files(((r.get("_origin", "?"), r) for r in records), tokenizer)
    return [c.as_dict(model) for c in found]
