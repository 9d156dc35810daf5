"""Which runs a run continues (model.from_run): the chain, each step with its data hash and figures.

A continued run writes `lineage.json` when it starts: the run it continues and that run's own
ancestors, each as a snapshot (path, id, data hash, eval losses), so the chain still reads when
an earlier run has moved. The run itself is always read live from its own files.
"""

from __future__ import annotations

import json
from pathlib import Path

from tunesmith.errors import RunDirError
from tunesmith.runs.rundir import RunDir
from tunesmith.utils.io import write_json

LINEAGE_FILE = "lineage.json"


def earlier_run(path: str, key: str = "model.from_run") -> RunDir:
    """The finished run `path` names, or RunDirError naming `key` and the fix."""
    run = RunDir(path)
    if not RunDir.is_run(run.path):
        raise RunDirError(f"{key}: {path} is not a run directory (no config.yaml and STATUS); "
                          "give the folder of a finished tunesmith run")
    if run.status() != "succeeded":
        raise RunDirError(f"{key}: {path} has status {run.status()}; continue only from a run that succeeded")
    return run


def earlier_config(path: str, key: str = "model.from_run"):
    """The RunConfig of the earlier run `path` (validated, migrated to today's keys)."""
    from tunesmith.config.load import validate_config

    run = earlier_run(path, key)
    return validate_config(run.read_config(), str(run.path / "config.yaml"))


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def step_record(path: str | Path) -> dict:
    """One step of a chain: the run's identity, data, method and figures, from its files."""
    run = RunDir(path)
    config = run.read_config()
    results, report = _json(run.path / "results.json"), _json(run.path / "data_report.json")
    data = config.get("data", {})
    regulariser = (config.get("train", {}).get("regulariser") or {}).get("name")
    return {
        "run": str(run.path.resolve()), "id": run.id, "status": run.status(),
        "data": data.get("train") or [t.get("name") for t in data.get("tasks", [])],
        "data_hash": report.get("data_hash"), "method": config.get("method", {}).get("name"),
        "regulariser": regulariser,
        "eval_loss_before": (results.get("eval_before") or {}).get("eval_loss"),
        "eval_loss_after": (results.get("eval_after") or {}).get("eval_loss"),
        "forgetting": results.get("forgetting"),
    }


def ancestors(path: str | Path) -> list[dict]:
    """The runs before this one, oldest first (empty for a run that continues none)."""
    return _json(Path(path) / LINEAGE_FILE).get("ancestors", [])


def record_lineage(run: RunDir, from_run: str) -> list[dict]:
    """Write RUN/lineage.json for a run continuing `from_run`; returns the ancestors, oldest first."""
    chain = ancestors(from_run) + [step_record(from_run)]
    write_json(run.path / LINEAGE_FILE, {"from_run": str(Path(from_run).resolve()), "ancestors": chain})
    return chain


def lineage(path: str | Path) -> list[dict]:
    """The whole chain ending with the run at `path`."""
    if not RunDir.is_run(path):
        raise RunDirError(f"{path} is not a run directory (no config.yaml and STATUS)")
    return ancestors(path) + [step_record(path)]
