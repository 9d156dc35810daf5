"""A cache of tokenized features, so a second run on the same data skips tokenization.

The key covers everything that changes the features: the records (content and origins), the
tokenizer (its full serialized vocabulary and rules, chat template and special tokens), the data
options the tasks read (template, system prompt, cutoff, train_on_prompt), the task and its
options, and a format version. Features are stored as flat int32 arrays plus offsets (numpy .npz):
compact, fast to load, and safe to read (no pickle).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

from tunesmith.data.tokenize import REPORT_CLASSES, TokenizeReport
from tunesmith.models.resolve import tunesmith_home
from tunesmith.utils.io import replace_dir

CACHE_VERSION = 3  # 3: the report class is a name looked up in REPORT_CLASSES, not a module to import


def cache_dir() -> Path:
    return tunesmith_home() / "cache" / "tokenized"


def tokenizer_fingerprint(tokenizer) -> str:
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # without the truncation/padding state that tokenizing calls leave behind
        state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
        digest.update(json.dumps(state, sort_keys=True).encode())
    else:
        digest.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    digest.update(str(getattr(tokenizer, "chat_template", "")).encode())
    digest.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def cache_key(records_digest: str, tokenizer, config) -> str:
    d = config.data
    parts = {
        "version": CACHE_VERSION,
        "records": records_digest,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "data": {"template": d.template, "system": d.system, "cutoff_len": d.cutoff_len,
                 "train_on_prompt": d.train_on_prompt},
        "task": config.task.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _encode(features: list[dict]) -> dict | None:
    """Column arrays for .npz, or None when a feature holds something other than ints/floats."""
    import numpy as np

    if not features:
        return None
    arrays = {}
    for key in features[0]:
        values = [f.get(key) for f in features]
        if all(isinstance(v, (list, tuple)) and all(isinstance(x, int) for x in v) for v in values):
            arrays[f"list__{key}"] = np.fromiter((x for v in values for x in v), dtype=np.int64)
            arrays[f"offsets__{key}"] = np.cumsum([0] + [len(v) for v in values], dtype=np.int64)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            arrays[f"scalar__{key}"] = np.asarray(values)
        else:
            return None
    return arrays


def _decode(arrays) -> list[dict]:
    columns, count = {}, 0
    for name in arrays.files:
        kind, key = name.split("__", 1)
        if kind == "list":
            flat, offsets = arrays[name].tolist(), arrays[f"offsets__{key}"].tolist()
            columns[key] = [flat[a:b] for a, b in itertools.pairwise(offsets)]
        elif kind == "scalar":
            columns[key] = arrays[name].tolist()
        else:
            continue
        count = len(columns[key])
    return [{k: v[i] for k, v in columns.items()} for i in range(count)]


def load(key: str) -> tuple[list[dict], TokenizeReport, dict] | None:
    """(features, report, task settings learned while tokenizing) or None."""
    import numpy as np

    folder = cache_dir() / key
    try:
        meta = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        with np.load(folder / "features.npz") as arrays:
            features = _decode(arrays)
        report = REPORT_CLASSES[meta["class"]](**meta["fields"])  # a known class, or a KeyError
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None  # missing, damaged or from an older layout: tokenize again
    if not isinstance(report, TokenizeReport):
        return None
    return features, report, meta.get("learned", {})


def save(key: str, features: list[dict], report: TokenizeReport, learned: dict) -> bool:
    """Store the features; a folder is renamed into place whole, so readers never see half of it."""
    import numpy as np

    arrays = _encode(features)
    if arrays is None:
        return False
    with replace_dir(cache_dir() / key, keep_existing=True) as tmp:  # another run may store it first
        np.savez(tmp / "features.npz", **arrays)
        meta = {"class": type(report).__qualname__, "fields": report.__dict__, "learned": learned}
        (tmp / "report.json").write_text(json.dumps(meta), encoding="utf-8")
    return True


def records_hash(records: list[dict]) -> str:
    """Content and origins ("file:line", which the tokenize report names) of the records."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode())
    return digest.hexdigest()


def build_features_cached(task, records: list[dict], tokenizer, config):
    """task.build_features through the cache: (features, report, "hit" | "miss" | "off")."""
    if not config.data.cache or not records:
        features, report = task.build_features(records, tokenizer, config)
        return features, report, "off"
    key = cache_key(records_hash(records), tokenizer, config)
    cached = load(key)
    if cached is not None:
        features, report, learned = cached
        for field, value in learned.items():  # e.g. classification's label map, read from the rows
            setattr(config.task, field, value)
        return features, report, "hit"
    before = config.task.model_dump(mode="json")
    features, report = task.build_features(records, tokenizer, config)
    after = config.task.model_dump(mode="json")
    save(key, features, report, {k: v for k, v in after.items() if before.get(k) != v})
    return features, report, "miss"
