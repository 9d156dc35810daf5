"""Config -> tokenized train and eval features, with a data report for the run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from tunesmith.data.cache import build_features_cached
from tunesmith.data.coverage import unreadable_records
from tunesmith.data.load import LoadReport, load_records, read_raw_rows, rows_to_records, split_eval, task_records
from tunesmith.data.multitask import mix_tasks
from tunesmith.data.records import require_rows
from tunesmith.data.steps import run_pipeline
from tunesmith.data.steps.split import SplitOptions, split_rows
from tunesmith.errors import DataError
from tunesmith.utils.progress import say


@dataclass
class PreparedData:
    train: list[dict]
    eval: list[dict]
    report: dict
    eval_records: list[dict] = field(default_factory=list)  # untokenized, for generation metrics
    eval_by_task: dict[str, list[dict]] = field(default_factory=dict)  # data.tasks: each task's eval features


def prepare_data(config, tokenizer, task) -> PreparedData:
    """Load, split and tokenize the data the config names; report counts at every stage.
    Several tasks (data.tasks) are mixed by data.sampling; data.replay adds earlier rows."""
    d = config.data
    if not d.train and not d.tasks:
        raise DataError("data.train is empty; give at least one training file (or data.tasks)")
    if d.train and d.tasks:
        raise DataError("data.tasks replaces data.train: give each task's files in data.tasks and leave "
                        "data.train empty (data.train=[])")
    split = split_records(config, task)
    train_records, eval_records, extra = split.train, split.eval, {}
    if d.tasks:
        if task.learn:  # on every task's rows: the mix may draw a task's rows (and labels) little or not at all
            task.learn(split.train, config.task)
        train_records, extra["tasks"] = mix_tasks(split.by_task, d.sampling, d.temperature, config.train.seed,
                                                  {t.name: t.weight for t in d.tasks})
    if d.replay:
        from tunesmith.data.replay import replay_records

        replayed, extra["replay"] = replay_records(d.replay, len(train_records), task, config.train.seed)
        train_records = train_records + replayed
    require_rows(train_records, f"training data {', '.join(d.train or [t.name for t in d.tasks])}")
    train, train_tok, train_cache = build_features_cached(task, train_records, tokenizer, config)
    evals, eval_tok, eval_cache = (
        build_features_cached(task, eval_records, tokenizer, config)
        if eval_records else ([], None, "off")
    )
    require_rows(train, "training data after tokenization (every row had nothing to learn)")
    eval_by_task = {name: build_features_cached(task, part[1], tokenizer, config)[0]
                    for name, part in split.by_task.items() if part[1]}
    report = {
        "load": split.load.as_dict(),
        "train": {"records": len(train_records), **_with_skipped(train_tok.as_dict(), split.checks["train"])},
        "eval": {"records": len(eval_records), **_with_skipped(eval_tok.as_dict() if eval_tok else {},
                                                               split.checks["eval"])},
        "data_hash": _hash(train_records + eval_records),
        **split.pipeline,
        **extra,
        "tokenize_cache": {"train": train_cache, "eval": eval_cache},
        "unreadable_text": unreadable_records(train_records + eval_records, tokenizer, config.model.name_or_path),
    }
    return PreparedData(train, evals, report, eval_records, eval_by_task)


@dataclass
class SplitRecords:
    """A config's canonical train and eval records, before tokenization (and, per task, data.tasks')."""

    train: list[dict]
    eval: list[dict]
    load: LoadReport
    checks: dict
    pipeline: dict = field(default_factory=dict)
    by_task: dict[str, tuple[list[dict], list[dict]]] = field(default_factory=dict)


def split_records(config, task) -> SplitRecords:
    """The train and eval records `config` names, split as training splits them (eval files,
    else eval_ratio with the seed); several tasks are read one by one and pooled."""
    d = config.data
    if d.tasks:
        parts = {}
        for t in d.tasks:
            one = config.model_copy(deep=True)
            one.data.tasks, one.data.train, one.data.eval = [], t.train, t.eval
            parts[t.name] = split_records(one, task)
        first = next(iter(parts.values()))
        return SplitRecords([r for p in parts.values() for r in p.train], [r for p in parts.values() for r in p.eval],
                            first.load, first.checks, first.pipeline,
                            {name: (p.train, p.eval) for name, p in parts.items()})
    load_report = LoadReport()
    fmt = data_format(d.format, task)
    checks = {"train": LoadReport(), "eval": LoadReport()}  # rows the task's own check turned down

    def expand(records, split):  # the task's own row check: the one `data validate` applies too
        return task_records(records, task, config.task, d.on_bad_row, checks[split])

    pipeline_report: dict = {}
    if d.pipeline:
        train_records, eval_records, pipeline_report = pipeline_records(config, load_report, fmt)
        train_records, eval_records = expand(train_records, "train"), expand(eval_records, "eval")
    else:
        train_records = expand(load_records(d.train, fmt, d.on_bad_row, load_report, d.columns)[0], "train")
        if d.max_rows:
            train_records = train_records[: d.max_rows]
        eval_records = expand(load_records(d.eval, fmt, d.on_bad_row, load_report, d.columns)[0], "eval")
        if not eval_records:
            train_records, eval_records = split_eval(train_records, d.eval_ratio, config.train.seed, d.stratify_by)
    return SplitRecords(train_records, eval_records, load_report, checks, pipeline_report)


def pipeline_records(config, load_report: LoadReport, fmt: str = "auto") -> tuple[list[dict], list[dict], dict]:
    """Raw rows -> data.pipeline steps -> canonical records. A split step's tags choose the
    eval rows (test rows are held out); otherwise eval_ratio holds out rows grouped by source,
    so an augmented variant never trains while its original is evaluated."""
    d, seed = config.data, config.train.seed
    rows = read_raw_rows(d.train, d.on_bad_row, load_report, d.columns)
    if d.max_rows:
        rows = rows[: d.max_rows]
    rows, reports = run_pipeline(rows, d.pipeline, {"seed": seed, "eval_files": d.eval})
    parts = {"train": rows, "eval": [], "test": []}
    if any("_split" in r for r in rows):
        parts = {name: [r for r in rows if r.get("_split", "train") == name] for name in ("train", "eval", "test")}
    elif not d.eval and d.eval_ratio > 0 and len(rows) > 1:
        ratios = [1 - d.eval_ratio, d.eval_ratio]
        parts = split_rows(rows, SplitOptions(ratios=ratios), seed)  # variants move with their source
    train = rows_to_records(parts["train"], fmt, d.on_bad_row, load_report, "pipeline")
    evals = rows_to_records(parts["eval"], fmt, d.on_bad_row, load_report, "pipeline")
    if d.eval:
        evals, _ = load_records(d.eval, fmt, d.on_bad_row, load_report, d.columns)
    report = {"pipeline": [r.as_dict() for r in reports],
              "split": {"train": len(train), "eval": len(evals), "test_held_out": len(parts.get("test", []))}}
    return train, evals, report


def _with_skipped(tokenized: dict, check: LoadReport) -> dict:
    """The tokenize report with the rows the task's check skipped counted in (`skipped_rows`, `skipped`)."""
    skipped = [str(b) for b in check.bad_rows]
    if not skipped:
        return tokenized
    say(f"[yellow]skipped {len(skipped)} bad row(s)[/]; first: {skipped[0]} (all are listed in data_report.json)")
    return {**tokenized, "skipped_rows": tokenized.get("skipped_rows", 0) + len(skipped),
            "skipped": (skipped + tokenized.get("skipped", []))[:50]}


def data_format(configured: str, task) -> str:
    """`auto` means the task's own row format when it has one (it reads its own columns)."""
    return task.data_format if configured == "auto" and task.data_format else configured


def _hash(records: list[dict]) -> str:
    digest = hashlib.sha256()
    for r in records:
        digest.update(json.dumps({k: v for k, v in r.items() if k != "_origin"}, sort_keys=True).encode())
    return digest.hexdigest()[:16]
