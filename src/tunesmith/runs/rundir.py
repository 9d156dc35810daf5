"""The run directory: everything a run produces, readable without the process that wrote it."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from tunesmith.config.migrations import FIRST_VERSION, upgrade
from tunesmith.errors import RunDirError
from tunesmith.runs.cancel import CANCEL_FILE
from tunesmith.runs.events import EventSink, utc_now
from tunesmith.runs.lock import LOCK_FILE, RunLock, read_owner
from tunesmith.utils.io import append_jsonl, write_json, write_jsonl, write_text, write_yaml
from tunesmith.utils.yaml_files import read_yaml

STATUSES = ("running", "succeeded", "failed", "cancelled")
IDENTITY_FILE = "run.json"  # {"id", "created"}: written once, when the run is created


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.events = EventSink(self.path / "events.jsonl")

    # --- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, overwrite: bool = False, resume: bool = False) -> RunDir:
        """A run directory to write now: new or empty, continued (`resume`), or an old run
        replaced (`overwrite`). A folder that is not a tunesmith run is never touched."""
        run = cls(path)
        run.check_target(overwrite=overwrite, resume=resume)
        if run.has_contents() and not resume:
            run.clear()
        run.path.mkdir(parents=True, exist_ok=True)
        return run

    def check_target(self, *, overwrite: bool = False, resume: bool = False, inputs: list[Path] = ()) -> None:
        """Refuse, with one line, to write where a run must not go: a file, a folder that is not a
        run, an existing run without --overwrite/--resume, or a run holding this run's `inputs`
        (files a replaced run would delete)."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"output.dir {self.path} is a file; give a folder for the run")
        if not self.has_contents():
            return
        if not self.is_run(self.path):
            raise RunDirError(
                f"{self.path} is not empty and is not a tunesmith run (no {IDENTITY_FILE}, config.yaml or "
                "STATUS); tunesmith writes only into new or empty folders or its own runs: choose another "
                "output.dir"
            )
        if resume:
            return
        if not overwrite:
            raise RunDirError(
                f"run directory {self.path} already exists; pass --overwrite to replace it "
                "or --resume to continue it"
            )
        inside = [p for p in inputs if _is_within(p, self.path)]
        if inside:
            raise RunDirError(
                f"--overwrite would delete {inside[0]}, an input of this run inside {self.path}; "
                "move it out of the run directory or choose another output.dir"
            )

    def has_contents(self) -> bool:
        """Anything besides a writer's lock file."""
        return self.path.is_dir() and any(p.name != LOCK_FILE for p in self.path.iterdir())

    def clear(self) -> None:
        """Empty an old run before it is replaced (never called on a folder that is not a run)."""
        for entry in self.path.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def lock(self) -> RunLock:
        """`with run.lock():` this process is the run's only writer (runs/lock.py)."""
        return RunLock(self.path)

    def start(self, config: dict) -> None:
        """Begin writing: identity (kept on resume), config, STATUS running; an old cancel
        request is consumed."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.id is None:
            write_json(self.path / IDENTITY_FILE, {"id": uuid.uuid4().hex, "created": utc_now()})
        (self.path / CANCEL_FILE).unlink(missing_ok=True)
        self.write_config(config)
        self.set_status("running")

    # --- identity -------------------------------------------------------------------------
    @property
    def id(self) -> str | None:
        """The run's stable id (same after a move or copy); None for runs made before ids."""
        return self.identity().get("id")

    def identity(self) -> dict:
        try:
            return json.loads((self.path / IDENTITY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

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

    @property
    def cancel_file(self) -> Path:
        return self.path / CANCEL_FILE

    def request_cancel(self) -> None:
        """Ask the process training this run to stop at its next step (see runs/cancel.py)."""
        status = self.status() if self.is_run(self.path) else "not a run directory"
        if status != "running":
            raise RunDirError(f"{self.path} is {status}, not running: there is no training to cancel")
        write_text(self.cancel_file, utc_now() + "\n")

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
        data = read_yaml(file, RunDirError, "run config")
        if not isinstance(data, dict):
            raise RunDirError(f"{file}: not a run config (the top level must be a mapping)")
        return upgrade(data, str(file), unversioned=FIRST_VERSION)  # older runs load with today's keys

    def set_status(self, status: str, reason: str = "") -> None:
        assert status in STATUSES
        write_text(self.path / "STATUS", status + (f"\n{reason}\n" if reason else "\n"))

    def status(self) -> str:
        """STATUS, except that a run whose writer died while running reads `interrupted`."""
        file = self.path / "STATUS"
        status = file.read_text(encoding="utf-8").split("\n", 1)[0] if file.is_file() else "unknown"
        if status == "running":
            owner = read_owner(self.path)
            if owner is not None and owner.alive() is False:
                return "interrupted"
        return status

    def event(self, kind: str, message: str, **data) -> dict:
        return self.events.emit(kind, message, **data)

    def log_metrics(self, row: dict) -> None:
        append_jsonl(self.metrics_file, row)

    def trim_metrics(self, last_step: int) -> None:
        """Drop metrics logged after `last_step`: a resumed run replays those steps."""
        if not self.metrics_file.is_file():
            return
        rows = []
        for line in self.metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line cut short when the process was killed
                continue
        write_jsonl(self.metrics_file, [r for r in rows if r.get("step", 0) <= last_step])

    @staticmethod
    def is_run(path: str | Path) -> bool:
        path = Path(path)
        return (path / IDENTITY_FILE).is_file() or ((path / "config.yaml").is_file() and (path / "STATUS").is_file())


def _is_within(path: Path, folder: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(folder.resolve())
    except OSError:
        return False
