"""Mask personal data in text: emails, phone numbers and ID numbers, with Chinese formats.

Patterns are written here because the common PII libraries (presidio, scrubadub) need
spaCy models or network downloads; ID numbers are checksum-verified so a random run of
digits is not masked as an identity card.
"""

from __future__ import annotations

import re
from typing import Callable

# kind -> (pattern, optional checksum check, placeholder); order matters: longer IDs first.
_PATTERNS: dict[str, tuple[re.Pattern, Callable[[str], bool] | None, str]] = {}


def _add(kind: str, pattern: str, placeholder: str, check: Callable[[str], bool] | None = None):
    _PATTERNS[kind] = (re.compile(pattern), check, placeholder)


def _cn_id_ok(value: str) -> bool:
    """Chinese resident ID (GB 11643-1999): ISO 7064 MOD 11-2 check character."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(value[:17], weights))
    return "10X98765432"[total % 11] == value[17].upper()


def _luhn_ok(value: str) -> bool:
    digits = [int(d) for d in re.sub(r"\D", "", value)][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


_add("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "[EMAIL]")
_add("cn_id", r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
     r"\d{3}[\dXx](?![0-9A-Za-z])", "[ID]", _cn_id_ok)
_add("bank_card", r"(?<!\d)(?:\d{4}[ -]?){3}\d{1,7}(?!\d)", "[CARD]", _luhn_ok)
_add("cn_mobile", r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)", "[PHONE]")
_add("cn_landline", r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)", "[PHONE]")
_add("us_ssn", r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)", "[ID]")
_add("phone", r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?!\d)",
     "[PHONE]")

PII_KINDS = tuple(_PATTERNS)


def mask_pii(text: str, kinds: list[str], counts: dict[str, int]) -> str:
    """Replace every match of the chosen kinds with its placeholder; count them by kind."""
    for kind in kinds:
        pattern, check, placeholder = _PATTERNS[kind]

        def replace(m: re.Match, kind=kind, check=check, placeholder=placeholder) -> str:
            if check and not check(m.group(0)):
                return m.group(0)
            counts[kind] = counts.get(kind, 0) + 1
            return placeholder

        text = pattern.sub(replace, text)
    return text
