"""Config -> tokenized train and eval features, with a data report for the run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from tunesmith.data.load import LoadReport, load_records, split_eval
from tunesmith.data.records import require_rows
from tunesmith.errors import DataError
from tunesmith.training.cache import build_features_cached


@dataclass
class PreparedData:
    train: list[dict]
    eval: list[dict]
    report: dict


def prepare_data(config, tokenizer, task) -> PreparedData:
    """Load, split and tokenize the data the config names; report counts at every stage."""
    d = config.data
    if not d.train:
        raise DataError("data.train is empty; give at least one training file")
    load_report = LoadReport()
    train_records, _ = load_records(d.train, d.format, d.on_bad_row, load_report)
    if d.max_rows:
        train_records = train_records[: d.max_rows]
    eval_records, _ = load_records(d.eval, d.format, d.on_bad_row, load_report)
    if not eval_records:
        train_records, eval_records = split_eval(train_records, d.eval_ratio, config.train.seed)
    require_rows(train_records, f"training data {', '.join(d.train)}")
    train, train_tok, train_cache = build_features_cached(task, train_records, tokenizer, config)
    evals, eval_tok, eval_cache = (
        build_features_cached(task, eval_records, tokenizer, config)
        if eval_records else ([], None, "off")
    )
    require_rows(train, "training data after tokenization (every row had nothing to learn)")
    report = {
        "load": load_report.as_dict(),
        "train": {"records": len(train_records), **train_tok.as_dict()},
        "eval": {"records": len(eval_records), **(eval_tok.as_dict() if eval_tok else {})},
        "data_hash": _hash(train_records + eval_records),
        "tokenize_cache": {"train": train_cache, "eval": eval_cache},
    }
    return PreparedData(train, evals, report)


def _hash(records: list[dict]) -> str:
    digest = hashlib.sha256()
    for r in records:
        digest.update(json.dumps({k: v for k, v in r.items() if k != "_origin"}, sort_keys=True).encode())
    return digest.hexdigest()[:16]
