"""Config -> tokenized train and eval features, with a data report for the run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from tunesmith.data.load import LoadReport, load_records, split_eval
from tunesmith.data.records import require_rows
from tunesmith.errors import DataError


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
    fmt = data_format(d.format, task)
    train_records, _ = load_records(d.train, fmt, d.on_bad_row, load_report, d.columns)
    expand = task.expand_records or (lambda records: records)
    train_records = expand(train_records)
    if d.max_rows:
        train_records = train_records[: d.max_rows]
    eval_records = expand(load_records(d.eval, fmt, d.on_bad_row, load_report, d.columns)[0])
    if not eval_records:
        train_records, eval_records = split_eval(train_records, d.eval_ratio, config.train.seed, d.stratify_by)
    require_rows(train_records, f"training data {', '.join(d.train)}")
    train, train_tok = task.build_features(train_records, tokenizer, config)
    evals, eval_tok = task.build_features(eval_records, tokenizer, config) if eval_records else ([], None)
    require_rows(train, "training data after tokenization (every row had nothing to learn)")
    report = {
        "load": load_report.as_dict(),
        "train": {"records": len(train_records), **train_tok.as_dict()},
        "eval": {"records": len(eval_records), **(eval_tok.as_dict() if eval_tok else {})},
        "data_hash": _hash(train_records + eval_records),
    }
    return PreparedData(train, evals, report)


def data_format(configured: str, task) -> str:
    """`auto` means the task's own row format when it has one (it reads its own columns)."""
    return task.data_format if configured == "auto" and task.data_format else configured


def _hash(records: list[dict]) -> str:
    digest = hashlib.sha256()
    for r in records:
        digest.update(json.dumps({k: v for k, v in r.items() if k != "_origin"}, sort_keys=True).encode())
    return digest.hexdigest()[:16]
