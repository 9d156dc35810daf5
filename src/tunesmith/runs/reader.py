"""Reading finished (or running) run directories back: summaries, curves and config differences.

Everything here reads only files a run writes (config.yaml, STATUS, metrics.jsonl,
events.jsonl, results.json, data_report.json), so it works on runs from other machines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.errors import RunDirError
from tunesmith.runs.events import parse_time
from tunesmith.runs.rundir import RunDir
from tunesmith.utils.flat import flatten
from tunesmith.utils.io import read_jsonl

# logged every step or evaluation but not worth a curve of their own
NOT_CURVES = {"epoch", "step", "grad_norm", "tokens_per_second", "num_input_tokens_seen", "total_flos"}


@dataclass
class RunSummary:
    path: Path
    status: str
    config: dict
    method: str
    model: str
    data: str
    rows: int | None
    steps: int | None
    learning_rate: float | None
    batch: str
    train_loss: float | None  # last logged training loss
    eval_before: float | None
    eval_after: float | None
    seconds: float | None
    started: str | None
    final_metrics: dict = field(default_factory=dict)  # eval_* after training (results.json)
    id: str | None = None  # run.json's id (None for runs made before ids)
    forgetting: dict = field(default_factory=dict)  # a continued run's backward transfer, forward gain

    @property
    def name(self) -> str:
        return self.path.name


def find_runs(root: str | Path, depth: int = 4) -> list[Path]:
    """Run directories at or below `root`; the inside of a run is not searched."""
    root = Path(root)
    try:
        if not root.is_dir():
            raise RunDirError(f"no such folder: {root}")
        if RunDir.is_run(root):
            return [root]
        if depth == 0:
            return []
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except PermissionError:
        raise RunDirError(f"{root}: permission denied; cannot list the runs in it "
                          "(ask for read access or name a folder you can read)") from None
    found: list[Path] = []
    for child in children:
        found += find_runs(child, depth - 1)
    return found


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def summarize(path: str | Path) -> RunSummary:
    run = RunDir(path)
    config = run.read_config()
    metrics = read_jsonl(run.metrics_file) if run.metrics_file.is_file() else []
    events = read_jsonl(run.path / "events.jsonl") if (run.path / "events.jsonl").is_file() else []
    results, report = _json(run.path / "results.json"), _json(run.path / "data_report.json")
    train, method = config.get("train", {}), config.get("method", {})
    losses = [r["loss"] for r in metrics if "loss" in r]
    evals = [r["eval_loss"] for r in metrics if "eval_loss" in r]
    after = results.get("eval_after") or {}
    pruned = _json(run.path / "trial.json").get("pruned_at_step")  # a sweep stopped it early
    return RunSummary(
        path=run.path, status="pruned" if pruned is not None else run.status(), config=config,
        method=_method_label(method), model=Path(str(config.get("model", {}).get("name_or_path", "?"))).name,
        data=", ".join(Path(f).name for f in config.get("data", {}).get("train", [])),
        rows=(report.get("train") or {}).get("records"),
        steps=max((r.get("step", 0) for r in metrics), default=None),
        learning_rate=train.get("learning_rate") if not isinstance(train.get("learning_rate"), str) else None,
        batch=f"{train.get('batch_size')}x{train.get('grad_accum', 1)}",
        train_loss=losses[-1] if losses else None,
        eval_before=(results.get("eval_before") or {}).get("eval_loss"),
        eval_after=after.get("eval_loss", evals[-1] if evals else None),
        seconds=(results.get("train") or {}).get("train_runtime") or _event_span(events),
        started=events[0]["time"] if events else None,
        final_metrics={k: v for k, v in after.items() if k.startswith("eval_") and k not in _RUNTIME},
        id=run.id,
        forgetting=results.get("forgetting") or {},
    )


_RUNTIME = {"eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}


def _method_label(method: dict) -> str:
    name = method.get("name", "?")
    for option in ("r", "trainable_layers"):
        if option in method:
            return f"{name} {option}={method[option]}"
    return name


def _event_span(events: list[dict]) -> float | None:
    try:
        times = [parse_time(e["time"]) for e in events]
    except (KeyError, ValueError):
        return None
    return (max(times) - min(times)).total_seconds() if len(times) > 1 else None


def curves(path: str | Path, x: str = "step") -> dict[str, list[tuple[float, float]]]:
    """{metric: [(x, value), ...]} for every numeric metric in metrics.jsonl. A run resumed
    (or restarted) logs some steps twice; the later line wins, as it is the run that went on."""
    file = RunDir(path).metrics_file
    rows = read_jsonl(file) if file.is_file() else []
    points: dict[str, dict[tuple, tuple[float, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key in NOT_CURVES or key in _RUNTIME or key.startswith("train_") or x not in row:
                continue
            if isinstance(value, (int, float)):
                points.setdefault(key, {})[(row.get("step"), row[x])] = (row[x], value)
    return {key: sorted(by_step.values()) for key, by_step in points.items()}


def config_differences(configs: list[dict]) -> list[str]:
    """Dotted keys whose values differ between the configs (output.* aside)."""
    flat = [flatten(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [k for k in keys if not k.startswith("output.") and len({f.get(k) for f in flat}) > 1]
