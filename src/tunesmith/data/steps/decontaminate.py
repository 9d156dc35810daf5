"""decontaminate: drop training rows that share long n-grams with evaluation or benchmark rows.

A shared 10-token run (words; characters for CJK) is very unlikely by chance and very
likely a leaked test item; rows shorter than n match when their whole text appears.
A row's fields are joined before cutting n-grams, so a leaked item also matches across its
input/output boundary: n-grams within single fields found only 9 of the 18 real overlaps
between alpaca_en_demo.json and alpaca_data_1k.json (short inputs like "Element:
Plutonium-239" followed by their answer).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.pipeline import FILE, StepOptions
from tunesmith.data.load import read_raw_rows
from tunesmith.data.records import ORIGIN
from tunesmith.data.steps import Step, register_step
from tunesmith.data.text import FieldsSeen, ngrams, normalize, row_text, tokens
from tunesmith.errors import DataError
from tunesmith.utils.progress import progress


class DecontaminateOptions(StepOptions):
    step: Literal["decontaminate"] = "decontaminate"
    against: list[str] = Field(default_factory=list, description="Evaluation/benchmark files to protect "
                               "(default in a run: data.eval files).", json_schema_extra=FILE)
    n: int = Field(10, ge=3, description="Tokens per n-gram (words; characters for CJK).")
    min_matches: int = Field(1, ge=1, description="Shared n-grams needed to call a row contaminated.")
    fields: list[str] | None = Field(None, description="Compare only these top-level fields of "
                                     "training rows (e.g. [instruction, input]); default: all text.")
    eval_fields: list[str] | None = Field(None, description="Only these fields of evaluation rows.")


@register_step
class Decontaminate(Step):
    Options = DecontaminateOptions
    summary = "remove training rows sharing n-grams with eval/benchmark rows"
    example = {"against": ["eval.jsonl"], "n": 3}

    def __call__(self, rows: list[dict]) -> list[dict]:
        o = self.options
        files = o.against or self.context.get("eval_files") or []
        if not files:
            raise DataError("decontaminate: no evaluation files; set `against: [eval.jsonl, ...]`")
        index = EvalIndex(o.n, o.eval_fields)
        for row in read_raw_rows(files):
            index.add(row)
        fields = FieldsSeen("decontaminate", o.fields)
        for row in rows:
            fields.see(row)
        fields.check()
        kept, removed = [], []
        with progress("decontaminate", len(rows)) as advance:
            for row in rows:
                hit = index.match(row_text(row, o.fields), o.min_matches)
                if hit:
                    removed.append({"origin": row.get(ORIGIN, "?"), "eval_origin": hit[0], "ngram": hit[1]})
                else:
                    kept.append(row)
                advance(1, info=f"{len(removed)} contaminated")
        self.details = {"against": files, "eval_rows": index.rows, "n": o.n,
                        "contaminated": len(removed), "removed": removed[:200]}
        return kept


class EvalIndex:
    """n-grams of the evaluation rows -> the eval row they came from."""

    def __init__(self, n: int, fields: list[str] | None = None):
        self.n, self.fields = n, fields
        self.grams: dict[str, str] = {}
        self.short: dict[str, str] = {}  # whole text of eval rows shorter than n
        self.rows = 0

    def add(self, row: dict) -> None:
        self.rows += 1
        words = tokens(row_text(row, self.fields))
        target = self.short if len(words) < self.n else self.grams
        for gram in ([" ".join(words)] if len(words) < self.n else ngrams(words, self.n)):
            target.setdefault(gram, row.get(ORIGIN, "?"))

    def match(self, text: str, min_matches: int = 1) -> tuple[str, str] | None:
        """(eval origin, shared n-gram) of a contaminated text, else None."""
        words = tokens(text)
        hits = [(self.grams[g], g) for g in ngrams(words, self.n) if g in self.grams]
        if len(hits) >= min_matches:
            return hits[0]
        if self.short:
            joined = normalize(" ".join(words))
            for gram, where in self.short.items():
                if gram and (gram == joined or f" {gram} " in f" {joined} "):
                    return where, gram
        return None
