"""The run directory: everything a run produces, readable without the process that wrote it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml

from tunesmith.config.migrations import FIRST_VERSION, upgrade
from tunesmith.errors import RunDirError
from tunesmith.utils.io import append_jsonl, write_text, write_yaml

STATUSES = ("running", "succeeded", "failed", "cancelled")


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    # --- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, overwrite: bool = False, resume: bool = False) -> RunDir:
        run = cls(path)
        if run.path.exists() and any(run.path.iterdir()) and not resume:
            if not overwrite:
                raise RunDirError(
                    f"run directory {run.path} already exists; pass --overwrite to replace it "
                    "or --resume to continue it"
                )
            shutil.rmtree(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        return run

    # --- files ----------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    def last_checkpoint(self) -> Path | None:
        found = sorted(self.checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        complete = [p for p in found if (p / "trainer_state.json").is_file()]
        return complete[-1] if complete else None

    def write_config(self, data: dict) -> None:
        write_yaml(self.path / "config.yaml", data)

    def read_config(self) -> dict:
        file = self.path / "config.yaml"
        if not file.is_file():
            raise RunDirError(f"{self.path} is not a run directory (no config.yaml)")
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise RunDirError(f"{file}: not a run config (the top level must be a mapping)")
        return upgrade(data, str(file), unversioned=FIRST_VERSION)  # older runs load with today's keys

    def set_status(self, status: str, reason: str = "") -> None:
        assert status in STATUSES
        write_text(self.path / "STATUS", status + (f"\n{reason}\n" if reason else "\n"))

    def status(self) -> str:
        file = self.path / "STATUS"
        return file.read_text(encoding="utf-8").split("\n", 1)[0] if file.is_file() else "unknown"

    def event(self, kind: str, message: str, **data) -> None:
        row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "event": kind, "message": message, **data}
        append_jsonl(self.path / "events.jsonl", row)

    def log_metrics(self, row: dict) -> None:
        append_jsonl(self.metrics_file, row)

    @staticmethod
    def is_run(path: str | Path) -> bool:
        return (Path(path) / "config.yaml").is_file() and (Path(path) / "STATUS").is_file()
