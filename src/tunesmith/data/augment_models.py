"""Model-backed augmentation: mask-fill with a local masked LM and back-translation with two
local translation models or an OpenAI-compatible endpoint. Nothing is downloaded: a missing
model is an error that says what to provide."""

from __future__ import annotations

import json
import random
import re
import urllib.request
from pathlib import Path
from typing import Callable

from tunesmith.errors import DataError, ModelError


def model_ops(options) -> dict[str, Callable[[str], str]]:
    ops: dict[str, Callable[[str], str]] = {}
    if "mask_fill" in options.ops:
        ops["mask_fill"] = _mask_filler(options.mask_model, options.alpha, options.seed or 42)
    if "back_translate" in options.ops:
        ops["back_translate"] = _back_translator(options)
    return ops


def _local_dir(path: str | None, what: str, example: str) -> str:
    if not path:
        raise DataError(f"augment: {what} needs a local model directory ({example}); "
                        "tunesmith does not download models here")
    if not Path(path).is_dir():
        raise ModelError(f"augment: {what} model directory not found: {path}")
    return path


def _mask_filler(path: str | None, alpha: float, seed: int) -> Callable[[str], str]:
    from transformers import pipeline

    model_dir = _local_dir(path, "mask_fill", "mask_model: a BERT/RoBERTa dir with a masked-LM head")
    try:
        fill = pipeline("fill-mask", model=model_dir, tokenizer=model_dir, top_k=5)
    except (OSError, ValueError) as err:
        raise ModelError(f"augment: {model_dir} is not a masked language model ({err})") from None
    mask, rng = fill.tokenizer.mask_token, random.Random(seed)
    special = set(fill.tokenizer.all_special_tokens)

    def change(text: str) -> str:
        words = re.findall(r"\S+", text)
        if not words or mask in text:  # a second mask would make the pipeline answer per mask
            return text
        for i in rng.sample(range(len(words)), max(1, round(alpha * len(words)))):
            masked = " ".join(words[:i] + [mask] + words[i + 1:])
            options = [c["token_str"].strip() for c in fill(masked)
                       if c["token_str"].strip() not in special | {words[i], ""}]
            if options:
                words[i] = options[0]
        return " ".join(words)

    return change


def _back_translator(o) -> Callable[[str], str]:
    if o.endpoint:
        return lambda text: _endpoint_round_trip(o.endpoint, o.endpoint_model, o.pivot_language, text)
    if len(o.translate_models) != 2:
        raise DataError("augment: back_translate needs translate_models: [there_dir, back_dir] "
                        "(e.g. two local Marian models) or endpoint: an OpenAI-compatible URL")
    from transformers import pipeline

    there, back = (pipeline("translation", model=_local_dir(p, "back_translate", "a translation model"))
                   for p in o.translate_models)
    return lambda text: back(there(text)[0]["translation_text"])[0]["translation_text"]


def _endpoint_round_trip(url: str, model: str | None, pivot: str, text: str) -> str:
    there = _chat(url, model, f"Translate into {pivot}. Reply with the translation only.\n\n{text}")
    return _chat(url, model, f"Translate into the language of this example: {text[:80]!r}. "
                 f"Reply with the translation only.\n\n{there}")


def _chat(url: str, model: str | None, prompt: str) -> str:
    body = json.dumps({"model": model or "default", "temperature": 0.7,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/chat/completions", body,
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["choices"][0]["message"]["content"].strip()
    except OSError as err:
        raise DataError(f"augment: endpoint {url} failed ({err})") from None
