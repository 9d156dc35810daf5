"""clean: Unicode NFKC, control characters and whitespace, HTML, PII masking, a glossary,
and filters that drop rows by length, letter ratio and repetition."""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from tunesmith.config.pipeline import FILE, StepOptions
from tunesmith.data.pii import PII_KINDS, mask_pii
from tunesmith.data.records import ORIGIN
from tunesmith.data.steps import Step, register_step
from tunesmith.data.text import FieldsSeen, map_strings, ngrams, row_text, tokens
from tunesmith.errors import DataError
from tunesmith.utils.yaml_files import read_yaml

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[ \t]{2,}")
_BLANK_LINES = re.compile(r"\n{3,}")
_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?|/[a-zA-Z][a-zA-Z0-9]*\s*|!--.*?--)>", re.S)
_LETTER = re.compile(r"[^\W\d_]")


class CleanOptions(StepOptions):
    step: Literal["clean"] = "clean"
    nfkc: bool = Field(True, description="Unicode NFKC (full-width letters/digits to ASCII, ligatures "
                       "split); full-width punctuation in CJK text is kept.")
    whitespace: bool = Field(True, description="Drop control and zero-width characters, trailing spaces "
                             "and extra blank lines (indentation is kept).")
    collapse_spaces: bool = Field(False, description="Also collapse runs of spaces inside lines "
                                  "(off by default: it breaks aligned tables and ASCII art).")
    strip_html: bool = Field(False, description="Remove HTML tags and unescape entities (only in text "
                             "that contains tags).")
    pii: list[Literal[PII_KINDS]] = Field(  # type: ignore[valid-type]
        default_factory=list, description=f"Mask personal data of these kinds: {', '.join(PII_KINDS)}; "
        "or all.")
    glossary: str | dict[str, str] | None = Field(
        None, description="YAML file (or mapping) variant -> canonical term, applied to all text.",
        json_schema_extra=FILE)
    min_chars: int = Field(0, ge=0, description="Drop rows with fewer characters of text.")
    max_chars: int | None = Field(None, gt=0, description="Drop rows with more characters of text.")
    min_letter_ratio: float = Field(0.0, ge=0, le=1, description="Drop rows whose share of letters "
                                    "(any script) among non-space characters is lower.")
    max_repeat_ratio: float = Field(1.0, ge=0, le=1, description="Drop rows whose share of repeated "
                                    "word 3-grams is higher (e.g. 'Eat a banana!' x 2000).")
    fields: list[str] | None = Field(None, description="Only these top-level fields (default: all text).")

    @field_validator("pii", mode="before")
    @classmethod
    def _all_kinds(cls, v):
        return list(PII_KINDS) if v in ("all", ["all"]) else v


@register_step
class Clean(Step):
    Options = CleanOptions
    summary = "normalise Unicode/whitespace/HTML, mask PII, apply a glossary, filter by length/ratio"
    example = {"strip_html": True, "pii": ["email"], "min_chars": 3}

    def __call__(self, rows: list[dict]) -> list[dict]:
        o = self.options
        glossary = _Glossary(load_glossary(o.glossary)) if o.glossary else None
        pii: dict[str, int] = {}
        changed, dropped = 0, {}
        out = []
        fields = FieldsSeen("clean", o.fields)
        for row in rows:
            fields.see(row)
            new = map_strings(row, lambda t: self._clean_text(t, glossary, pii), o.fields)
            changed += new != row
            reason = self._filter_reason(row_text(new, o.fields))
            if reason:
                dropped.setdefault(reason, []).append(row.get(ORIGIN, "?"))
                continue
            out.append(new)
        fields.check()
        self.details = {
            "rows_changed": changed, "pii_masked": pii,
            "glossary_replacements": glossary.count if glossary else 0,
            "dropped": {r: {"rows": len(v), "origins": v[:50]} for r, v in dropped.items()},
        }
        return out

    def _clean_text(self, text: str, glossary, pii: dict) -> str:
        o = self.options
        if o.nfkc:
            text = nfkc(text)
        if o.strip_html and _TAG.search(text):
            text = strip_html(text)
        if o.whitespace:
            text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).replace("\u00a0", " ")
            text = "\n".join(self._line(ln) for ln in text.split("\n"))
            text = _BLANK_LINES.sub("\n\n", text).strip("\n").rstrip()
        if o.pii:
            text = mask_pii(text, list(o.pii), pii)
        if glossary:
            text = glossary(text)
        return text

    def _line(self, line: str) -> str:
        """Trailing spaces go; leading indentation stays (code, poems, tables keep their shape)."""
        line = line.rstrip()
        if not self.options.collapse_spaces:
            return line
        body = line.lstrip(" \t")
        return line[: len(line) - len(body)] + _SPACES.sub(" ", body)

    def _filter_reason(self, text: str) -> str | None:
        o = self.options
        n = len(text)
        if n < o.min_chars:
            return f"shorter than {o.min_chars} characters"
        if o.max_chars and n > o.max_chars:
            return f"longer than {o.max_chars} characters"
        visible = [c for c in text if not c.isspace()]
        if o.min_letter_ratio and sum(bool(_LETTER.match(c)) for c in visible) < o.min_letter_ratio * len(visible):
            return f"letter ratio below {o.min_letter_ratio}"
        if o.max_repeat_ratio < 1:
            words = tokens(text)
            total = max(len(words) - 2, 0)
            if total >= 10 and 1 - len(ngrams(words, 3)) / total > o.max_repeat_ratio:
                return f"repeated 3-gram ratio above {o.max_repeat_ratio}"
        return None


# Full-width punctuation is correct in Chinese/Japanese text; NFKC would turn "，" into ",".
# In text with CJK characters it is swapped for private-use characters (which NFKC leaves
# alone) and swapped back afterwards.
_CJK_PUNCT = "，。：；！？（）【】、《》「」『』〈〉"
_HIDE = {ord(c): 0xE000 + i for i, c in enumerate(_CJK_PUNCT)}
_SHOW = {v: k for k, v in _HIDE.items()}
_HAS_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def nfkc(text: str) -> str:
    if not _HAS_CJK.search(text):
        return unicodedata.normalize("NFKC", text)
    return unicodedata.normalize("NFKC", text.translate(_HIDE)).translate(_SHOW)


class _HTMLText(HTMLParser):
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style") and self.skip > 0
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """Visible text of an HTML fragment (stdlib parser: tolerant of broken markup)."""
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    return html.unescape("".join(parser.parts))


def load_glossary(source: str | dict) -> dict[str, str]:
    if isinstance(source, dict):
        return source
    path = Path(source)
    data = read_yaml(path, DataError, "glossary file")
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise DataError(f"{path}: a glossary is a YAML mapping of variant: canonical term")
    return data


class _Glossary:
    """Longest variant first; Latin variants only match whole words, CJK ones anywhere."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = {k.casefold(): v for k, v in mapping.items()}
        alternatives = []
        for variant in sorted(mapping, key=len, reverse=True):
            word = re.escape(variant)
            alternatives.append(rf"(?<!\w){word}(?!\w)" if variant[:1].isascii() and variant[-1:].isascii() else word)
        self.pattern = re.compile("|".join(alternatives), re.IGNORECASE)
        self.count = 0

    def __call__(self, text: str) -> str:
        return self.pattern.sub(self._replace, text)

    def _replace(self, m: re.Match) -> str:
        self.count += 1
        return self.mapping[m.group(0).casefold()]
