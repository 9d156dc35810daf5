"""Runs as API objects: one dict per run directory (id, status, task, method, model, final
figures), its details, its in-loop metric series with progress, and a comparison of several.
Read only from the files a run writes, so CLI-trained runs and jobs' runs look alike."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from tunesmith.errors import RunDirError
from tunesmith.runs.events import parse_time
from tunesmith.runs.lock import read_owner
from tunesmith.runs.reader import _RUNTIME, _json, config_differences, find_runs, summarize
from tunesmith.runs.rundir import RunDir
from tunesmith.utils.flat import flatten
from tunesmith.utils.io import read_jsonl

# logged by the Trainer but not an in-loop metric: bookkeeping, or the end-of-training summary row
NOT_SERIES = {"step", "epoch", "total_flos", "num_input_tokens_seen", *_RUNTIME}


def run_id(path: str | Path) -> str:
    """run.json's id; for runs made before ids, a stable digest of the run's absolute path."""
    run = RunDir(path)
    return run.id or "path-" + hashlib.sha256(str(run.path.resolve()).encode()).hexdigest()[:24]


def run_status(path: str | Path) -> str:
    """STATUS, except that `running` holds only while its writer lives: a run whose writer died
    (kill -9, a crash) or left no lock behind reads `interrupted`, never a stale `running`."""
    run = RunDir(path)
    status = run.status()
    if status == "running" and read_owner(run.path) is None:
        return "interrupted"  # a live writer always holds LOCK while STATUS says running
    return status


def created_at(path: str | Path) -> int:
    """Unix seconds the run was created (run.json), else when its STATUS was last written."""
    run = RunDir(path)
    created = run.identity().get("created")
    try:
        return int(parse_time(created).timestamp()) if created else int((run.path / "STATUS").stat().st_mtime)
    except (OSError, ValueError):
        return 0


def run_object(path: str | Path, job_id: str | None = None) -> dict:
    """The run as the API lists it."""
    s = summarize(path)
    figures = {"train_loss": s.train_loss, "eval_loss": s.eval_after, **s.final_metrics}
    return {"id": run_id(s.path), "object": "run", "path": str(s.path), "created_at": created_at(s.path),
            "status": "pruned" if s.status == "pruned" else run_status(s.path),
            "task": s.config.get("task", {}).get("name"), "method": s.config.get("method", {}).get("name"),
            "model": str(s.config.get("model", {}).get("name_or_path", "")) or None,
            "metrics": {k: v for k, v in figures.items() if v is not None}, "job_id": job_id}


def run_detail(path: str | Path, job_id: str | None = None) -> dict:
    """The run with its config (as a dict and as the YAML file), results and data report."""
    run = RunDir(path)
    results, report = _json(run.path / "results.json"), _json(run.path / "data_report.json")
    return {**run_object(path, job_id), "config": run.read_config(),
            "config_yaml": (run.path / "config.yaml").read_text(encoding="utf-8"),
            "results": results or None, "data_report": report or None}


def series(path: str | Path) -> dict[str, list[list[float]]]:
    """{metric: [[step, value], ...]} of every numeric in-loop metric of metrics.jsonl, the
    training loss as `train_loss`. A step logged twice (a resumed run) keeps its later value."""
    file = RunDir(path).metrics_file
    points: dict[str, dict[int, float]] = {}
    for row in read_jsonl(file) if file.is_file() else []:
        if "step" not in row or "total_flos" in row:  # the Trainer's end-of-training summary
            continue
        for key, value in row.items():
            if key in NOT_SERIES or key.startswith("train_"):  # train_runtime: time so far, not a metric
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                points.setdefault("train_loss" if key == "loss" else key, {})[row["step"]] = value
    return {key: [[step, value] for step, value in sorted(by_step.items())] for key, by_step in points.items()}


def progress(path: str | Path, status: str | None = None) -> dict | None:
    """{step, total_steps, eta_seconds} from the run's events and metrics; None before training
    began. The ETA is the pace since the last train_begin (a resume restarts it), only while running."""
    run = RunDir(path)
    events = read_jsonl(run.path / "events.jsonl") if (run.path / "events.jsonl").is_file() else []
    begins = [e for e in events if e.get("event") == "train_begin"]
    if not begins:
        return None
    total = begins[-1].get("max_steps")
    metrics = read_jsonl(run.metrics_file) if run.metrics_file.is_file() else []
    steps = [r["step"] for r in metrics if isinstance(r.get("step"), int)]
    ends = [e.get("step") for e in events if e.get("event") in ("train_end", "checkpoint") and e.get("step")]
    step = max(steps + ends, default=0)
    eta = None
    done = step - begins[-1].get("step", 0)  # steps trained since this (re)start
    if (status or run_status(path)) == "running" and total and done > 0:
        elapsed = time.time() - parse_time(begins[-1]["time"]).timestamp()
        eta = round(elapsed / done * max(0, total - step), 1)
    return {"step": step, "total_steps": total, "eta_seconds": eta}


def run_metrics(path: str | Path) -> dict:
    return {"object": "run.metrics", "id": run_id(path), "series": series(path), "progress": progress(path)}


def compare(paths: list[Path]) -> dict:
    """What `tunesmith runs compare` shows: the config keys that differ, each run's value of them,
    its figures, the extra eval metrics, the best eval loss, and every run's curves."""
    summaries = [summarize(p) for p in paths]
    differing = config_differences([s.config for s in summaries])
    extra = sorted({k for s in summaries for k in s.final_metrics if k != "eval_loss"})
    best = min((s.eval_after for s in summaries if s.eval_after is not None), default=None)
    rows = []
    for s in summaries:
        flat = flatten(s.config)
        rows.append({"id": run_id(s.path), "path": str(s.path), "name": s.name, "status": s.status,
                     "config": {k: flat.get(k, "") for k in differing}, "steps": s.steps,
                     "train_loss": s.train_loss, "eval_loss": s.eval_after,
                     "metrics": {k: s.final_metrics.get(k) for k in extra}, "seconds": s.seconds,
                     "best": best is not None and s.eval_after == best, "forgetting": s.forgetting or None,
                     "series": series(s.path)})
    return {"object": "run.comparison", "differing": differing, "metrics": extra, "runs": rows}


def runs_below(root: str | Path) -> list[Path]:
    """The run directories below `root`; none when it does not exist yet."""
    try:
        return find_runs(root)
    except RunDirError:
        return []
