"""Input perturbations for robustness checks; each is seeded, so a report can be reproduced."""

from __future__ import annotations

import json
import random
import re
import unicodedata
from pathlib import Path

from tunesmith.metrics.text_utils import CJK_CHAR, MetricInputError

# A small built-in dictionary (English and Chinese words common in questions); users give
# their domain's synonyms with --synonyms FILE.json ({"word": ["synonym", ...]}).
SYNONYMS = {
    "who": ["which person"], "what": ["which thing"], "made": ["built", "created"],
    "built": ["made", "constructed"], "created": ["made", "built"], "tell": ["inform"],
    "name": ["title"], "help": ["assist"], "question": ["query"], "answer": ["reply", "response"],
    "big": ["large"], "small": ["little"], "fast": ["quick"], "explain": ["describe"],
    "show": ["display"], "buy": ["purchase"], "start": ["begin"], "end": ["finish"],
    "use": ["utilize"], "need": ["require"], "get": ["obtain"], "give": ["provide"],
    "team": ["group"], "company": ["firm"], "assistant": ["helper"], "briefly": ["shortly"],
    "你": ["您"], "谁": ["哪位"], "名字": ["姓名"], "什么": ["啥"], "帮助": ["帮忙"],
    "问题": ["疑问"], "回答": ["答复"], "公司": ["企业"], "开始": ["启动"], "需要": ["需"],
}

_WORD = re.compile(r"[A-Za-z]+")


def typos(text: str, rng: random.Random, rate: float = 0.3) -> str:
    """Swap two inner letters in ~rate of the longer words; drop ~5% of CJK characters."""
    def swap(match: re.Match) -> str:
        word = match.group(0)
        if len(word) < 4 or rng.random() > rate:
            return word
        i = rng.randrange(1, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]

    text = _WORD.sub(swap, text)
    return "".join(c for c in text if not (CJK_CHAR.match(c) and rng.random() < 0.05))


def casing(text: str, rng: random.Random) -> str:
    """Each word upper-, lower- or title-cased at random."""
    return _WORD.sub(lambda m: rng.choice([str.upper, str.lower, str.title])(m.group(0)), text)


def punctuation(text: str, rng: random.Random) -> str:
    """All punctuation (ASCII and CJK) removed."""
    return "".join(c for c in text if not unicodedata.category(c).startswith("P"))


def whitespace(text: str, rng: random.Random) -> str:
    """Doubled spaces, a stray tab and newlines around the text."""
    words = text.split(" ")
    spaced = "".join(w + rng.choice(["  ", " ", "\t", "   "]) for w in words).rstrip()
    return "\n " + spaced + " \n\n"


def synonyms(text: str, rng: random.Random, table: dict[str, list[str]] | None = None) -> str:
    """Replace every dictionary word (whole English words; Chinese words as substrings)."""
    table = table or SYNONYMS
    for word, options in sorted(table.items(), key=lambda kv: -len(kv[0])):
        if CJK_CHAR.match(word):
            text = text.replace(word, rng.choice(options))
        else:
            text = re.sub(rf"\b{re.escape(word)}\b", lambda m, o=options: _keep_case(m.group(0), rng.choice(o)),
                          text, flags=re.IGNORECASE)
    return text


def _keep_case(original: str, replacement: str) -> str:
    return replacement[0].upper() + replacement[1:] if original[:1].isupper() else replacement


PERTURBATIONS = {"typos": typos, "casing": casing, "punctuation": punctuation,
                 "whitespace": whitespace, "synonyms": synonyms}


def load_synonyms(path: str | None) -> dict[str, list[str]]:
    if not path:
        return SYNONYMS
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise MetricInputError(f"--synonyms {path}: cannot read a JSON dictionary ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) and v for v in data.values()):
        raise MetricInputError(f'--synonyms {path}: expected {{"word": ["synonym", ...]}}')
    return data


def perturb_messages(messages: list[dict], kind: str, seed: int, table=None) -> list[dict]:
    """The conversation with its last user message perturbed."""
    rng = random.Random(f"{kind}:{seed}")
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    fn = PERTURBATIONS[kind]
    content = fn(messages[last]["content"], rng, table) if kind == "synonyms" else fn(messages[last]["content"], rng)
    return [*messages[:last], {**messages[last], "content": content}, *messages[last + 1:]]
