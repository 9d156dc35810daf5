"""augment: new training rows from old ones, each carrying `_augmented_from` (its source row).

EDA operations (Wei & Zou, 2019): synonym replacement from a user's dictionary, random
insertion of synonyms, random swap and random deletion. Words are tokens of Latin text and,
for Chinese (no spaces), dictionary words by longest match and single characters otherwise
(jieba is used when it is installed). Mask-fill and back-translation use local models (or an
OpenAI-compatible endpoint) through tunesmith.data.augment_models. Only prompt-side text is
changed by default, so answers stay correct; variants of one row stay in one split.
"""

from __future__ import annotations

import json
import random
import re
from typing import Literal

from pydantic import Field

from tunesmith.config.pipeline import FILE, StepOptions
from tunesmith.data.records import ORIGIN
from tunesmith.data.steps import Step, register_step
from tunesmith.data.text import is_cjk_heavy
from tunesmith.errors import DataError
from tunesmith.utils.progress import progress
from tunesmith.utils.yaml_files import read_yaml

EDA_OPS = ("synonym", "insert", "swap", "delete")
PROMPT_FIELDS = ["instruction", "input", "question", "prompt", "query"]
PROMPT_ROLES = ("user", "human")
_WORD = re.compile(r"\w+|[^\w\s]|\s+")


class AugmentOptions(StepOptions):
    step: Literal["augment"] = "augment"
    ops: list[Literal["synonym", "insert", "swap", "delete", "mask_fill", "back_translate"]] = Field(
        ["synonym", "swap", "delete"], description="Operations; each variant applies one, in turn.")
    synonyms: str | dict[str, list[str]] | None = Field(
        None, description="YAML/JSON file (or mapping) word -> [synonyms]; needed by synonym/insert.",
        json_schema_extra=FILE)
    alpha: float = Field(0.1, gt=0, le=0.5, description="Share of words an operation changes.")
    copies: int = Field(1, ge=1, le=16, description="Variants made per row.")
    fields: list[str] = Field(PROMPT_FIELDS, description="Top-level text fields to change; chat rows "
                              "change their user turns.")
    mask_model: str | None = Field(None, description="Local masked-LM directory for mask_fill.",
                                   json_schema_extra=FILE)
    translate_models: list[str] = Field(default_factory=list, description="Two local translation "
                                        "model directories (there, back) for back_translate.",
                                        json_schema_extra=FILE)
    endpoint: str | None = Field(None, description="OpenAI-compatible base URL for back_translate "
                                 "instead of local models, e.g. http://localhost:8000/v1.")
    endpoint_model: str | None = Field(None, description="Model name sent to the endpoint.")
    pivot_language: str = Field("French", description="Language back-translation goes through.")
    seed: int | None = Field(None, description="Seed (default: the run's train.seed, else 42).")


@register_step
class Augment(Step):
    Options = AugmentOptions
    summary = "EDA (synonym/insert/swap/delete, CJK-aware), mask-fill, back-translation; rows keep provenance"
    example = {"ops": ["synonym", "swap", "delete"], "synonyms": {"quick": ["fast"], "brown": ["tan"]}, "copies": 2}

    def __call__(self, rows: list[dict]) -> list[dict]:
        o = self.options
        rng = random.Random(self.seed())
        eda = Eda(load_synonyms(o.synonyms) if o.synonyms else {}, o.alpha)
        if {"synonym", "insert"} & set(o.ops) and not eda.synonyms:
            raise DataError("augment: ops synonym/insert need a synonym dictionary (synonyms: file.yaml)")
        from tunesmith.data.augment_models import model_ops

        extra = model_ops(o)  # raises a clear error when a model op has no model
        out, made, turn = [], {op: 0 for op in o.ops}, 0
        with progress("augment", len(rows)) as advance:
            for row in rows:
                out.append(row)
                turn = self._augment_row(row, out, made, extra, eda, rng, turn)
                advance(1, info=f"{sum(made.values())} added")
        unchanged = len(rows) * o.copies - sum(made.values())
        self.details = {"added": sum(made.values()), "by_op": made, "no_change_possible": unchanged}
        return out

    def _augment_row(self, row, out, made, extra, eda, rng, turn) -> int:
        o = self.options
        for k in range(o.copies):
            op, turn = o.ops[turn % len(o.ops)], turn + 1
            change = extra[op] if op in extra else (lambda t, op=op: eda.apply(op, t, rng))
            variant = self._variant(row, change)
            if variant is None:
                continue
            made[op] += 1
            variant["_augmented_from"] = row.get(ORIGIN, "?")
            variant[ORIGIN] = f"{row.get(ORIGIN, '?')}#aug{k + 1}"
            out.append(variant)
        return turn

    def _variant(self, row: dict, change) -> dict | None:
        new = json.loads(json.dumps(row, ensure_ascii=False))
        for key in self.options.fields:
            if isinstance(new.get(key), str) and new[key].strip():
                new[key] = change(new[key])
        for turns, role_key, text_key in (("messages", "role", "content"), ("conversations", "from", "value")):
            for turn in new.get(turns) or []:
                if (isinstance(turn, dict) and turn.get(role_key) in PROMPT_ROLES
                        and isinstance(turn.get(text_key), str)):
                    turn[text_key] = change(turn[text_key])
        return None if new == row else new


def load_synonyms(source: str | dict) -> dict[str, list[str]]:
    if isinstance(source, dict):
        data = source
    else:
        data = read_yaml(source, DataError, "synonym dictionary")  # YAML also reads JSON
    if not isinstance(data, dict):
        raise DataError(f"{source}: a synonym dictionary maps a word to a list of synonyms")
    return {str(k): [str(s) for s in (v if isinstance(v, list) else [v])] for k, v in data.items()}


class Eda:
    def __init__(self, synonyms: dict[str, list[str]], alpha: float):
        self.synonyms, self.alpha = synonyms, alpha
        self._longest = max((len(k) for k in synonyms), default=1)

    def apply(self, op: str, text: str, rng: random.Random) -> str:
        cjk = is_cjk_heavy(text)
        words = self.split(text, cjk)
        slots = [i for i, w in enumerate(words) if w.strip() and re.match(r"\w", w)]
        if not slots:
            return text
        n = max(1, round(self.alpha * len(slots)))
        getattr(self, f"_{op}")(words, slots, n, rng)
        return "".join(words)

    def split(self, text: str, cjk: bool) -> list[str]:
        if not cjk:
            return _WORD.findall(text)
        try:
            import jieba  # optional: real Chinese word segmentation when installed

            return list(jieba.cut(text))
        except ImportError:
            pass
        words, i = [], 0
        while i < len(text):  # dictionary words first (longest match), else one character
            for size in range(min(self._longest, len(text) - i), 0, -1):
                if size == 1 or text[i:i + size] in self.synonyms:
                    words.append(text[i:i + size])
                    i += size
                    break
        return words

    def _synonym(self, words, slots, n, rng):
        candidates = [i for i in slots if words[i] in self.synonyms or words[i].lower() in self.synonyms]
        for i in rng.sample(candidates, min(n, len(candidates))):
            words[i] = rng.choice(self.synonyms.get(words[i]) or self.synonyms[words[i].lower()])

    def _insert(self, words, slots, n, rng):
        candidates = [i for i in slots if words[i] in self.synonyms]
        for _ in range(min(n, len(candidates))):
            synonym = rng.choice(self.synonyms[words[rng.choice(candidates)]])
            at = rng.choice(slots)
            words.insert(at, synonym if is_cjk_heavy(synonym) else f"{synonym} ")

    def _swap(self, words, slots, n, rng):
        if len(slots) < 2:
            return
        for _ in range(n):
            a, b = rng.sample(slots, 2)
            words[a], words[b] = words[b], words[a]

    def _delete(self, words, slots, n, rng):
        if len(slots) < 2:
            return
        for i in rng.sample(slots, min(n, len(slots) - 1)):
            words[i] = ""
