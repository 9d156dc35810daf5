"""Segments -> token ids and labels (-100 where no loss is taken), cut at the cutoff length."""

from __future__ import annotations

from dataclasses import dataclass, field

IGNORE = -100
REPORT_CLASSES: dict[str, type] = {}  # name -> class: the tokenized cache stores names, never imports


@dataclass
class TokenizeReport:
    rows: int = 0
    tokens: int = 0
    trainable_tokens: int = 0
    truncated: list[str] = field(default_factory=list)  # origins of rows cut at the cutoff
    dropped: list[str] = field(default_factory=list)  # origins of rows with nothing to learn

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        REPORT_CLASSES[cls.__qualname__] = cls  # tasks extend the report; the cache finds them here

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "tokens": self.tokens,
            "trainable_tokens": self.trainable_tokens,
            "truncated_rows": len(self.truncated),
            "truncated": self.truncated[:50],
            "dropped_rows": len(self.dropped),
            "dropped": self.dropped[:50],
        }


def encode_segments(segments, tokenizer, train_all: bool = False) -> tuple[list[int], list[int]]:
    """Token ids of the segments in order, with labels only on trainable segments."""
    ids: list[int] = []
    labels: list[int] = []
    for text, trainable in segments:
        if not text:
            continue
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if (trainable or train_all) else [IGNORE] * len(piece)
    return ids, labels


def add_example(features: list[dict], report: TokenizeReport, origin: str, ids, labels, cutoff: int):
    """Truncate, count and keep one example; rows left with no trainable token are dropped."""
    if len(ids) > cutoff:
        report.truncated.append(origin)
        ids, labels = ids[:cutoff], labels[:cutoff]
    if all(x == IGNORE for x in labels):
        report.dropped.append(origin)
        return
    report.rows += 1
    report.tokens += len(ids)
    report.trainable_tokens += sum(x != IGNORE for x in labels)
    features.append({"input_ids": ids, "labels": labels})


REPORT_CLASSES[TokenizeReport.__qualname__] = TokenizeReport
