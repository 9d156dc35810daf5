"""The model registry: numbered versions of a name, aliases, traffic splits and rollback, in SQL.

A name points at one version, or at a split over several; `NAME@alias` points at one version;
`NAME@vN` is version N itself. Every change appends to a pointer history (so a rollback steps
back) and bumps a generation counter in the database, which server replicas poll to notice
changes without a restart. Requests, completions and feedback are recorded for A/B reports.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from tunesmith.errors import TunesmithError
from tunesmith.runs.reader import summarize
from tunesmith.runs.rundir import RunDir
from tunesmith.serving import tables as t
from tunesmith.serving.database import open_engine, write_transaction

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_VERSION = re.compile(r"v?(\d+)")


class RegistryError(TunesmithError):
    """A registry request that cannot be done (unknown name, version or alias; a bad split)."""


class RegistryNotFound(RegistryError):
    """A name or version the registry does not hold (HTTP 404)."""


@dataclass(frozen=True)
class Route:
    """Where a request for a registered name goes."""

    name: str
    version: int
    run_path: str

    @property
    def model(self) -> str:
        """The id that says which version answered, e.g. `chat@v3`."""
        return f"{self.name}@v{self.version}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def parse_reference(reference: str) -> tuple[str, str]:
    """`NAME`, `NAME@alias` or `NAME@vN` -> (name, target); target "" means the name itself."""
    name, _, target = reference.partition("@")
    return name, target


def parse_version(text: str | int) -> int:
    """3, "3" or "v3" -> 3."""
    match = _VERSION.fullmatch(str(text).strip())
    if not match:
        raise RegistryError(f"version {text!r} is not a version number; write e.g. 3 or v3")
    return int(match.group(1))


def parse_split(items: list[str]) -> dict[int, float]:
    """["v3=90", "v4=10"] -> {3: 90.0, 4: 10.0}."""
    split = {}
    for item in items:
        version, _, weight = item.partition("=")
        try:
            split[parse_version(version)] = float(weight)
        except (RegistryError, ValueError):
            raise RegistryError(f"split entry {item!r}: write VERSION=PERCENT, e.g. v3=90 v4=10") from None
    return split


def as_percentages(weights: dict) -> dict:
    """Split weights given as shares summing to 1 ({"1": 0.9, "2": 0.1}) or as percentages
    summing to 100, as percentages (what ModelRegistry.split takes)."""
    try:
        total = sum(float(w) for w in weights.values())
    except (TypeError, ValueError):
        raise RegistryError(f"split weights {weights!r}: give numbers, e.g. {{\"1\": 90, \"2\": 10}}") from None
    return {v: float(w) * 100 for v, w in weights.items()} if abs(total - 1) < 1e-6 else weights


def pick_version(split: dict[int, float], name: str, subject: str | None) -> int:
    """The version of a split that serves `subject`: the same one every time for a subject
    (sha256 of name and subject, not Python's per-process hash, so every replica agrees); by
    weighted chance without a subject. Versions hold consecutive slices of [0, 100) in version
    order, so changing 90/10 to 80/20 moves only the subjects in the slice that changed hands."""
    versions = sorted(v for v, w in split.items() if w > 0)
    weights = [split[v] for v in versions]
    if subject is None:
        return random.choices(versions, weights=weights)[0]
    digest = hashlib.sha256(f"{name}\x00{subject}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(weights)
    edge = 0.0
    for version, weight in zip(versions, weights):
        edge += weight
        if point < edge:
            return version
    return versions[-1]


class ModelRegistry:
    """Versions, aliases and splits of served names in one SQL database (see module docstring)."""

    def __init__(self, url: str | None = None):
        self.engine = open_engine(url)

    # --- changes (each bumps the generation) ------------------------------------------------
    def add(self, name: str, run_path: str | Path, note: str = "", promote: bool = False) -> int:
        """Register a finished run as the next version of NAME and return its number. The first
        version becomes what NAME serves; later ones serve only once promoted, aliased or split in."""
        _check_name(name, "name")
        run, figures = _finished_run(run_path)
        for attempt in range(3):  # on PostgreSQL another replica may take the number first: take the next
            try:
                return self._add(name, run, figures, note, promote)
            except sa.exc.IntegrityError:
                if attempt == 2:
                    raise

    def _add(self, name: str, run: Path, figures: dict, note: str, promote: bool) -> int:
        with write_transaction(self.engine) as c:
            version = (c.scalar(sa.select(sa.func.max(t.versions.c.version)).where(t.versions.c.name == name))
                       or 0) + 1
            c.execute(t.versions.insert().values(name=name, version=version, run_path=str(run), note=note,
                                                 figures=figures, created_at=_now()))
            if promote or self._pointer(c, name, "") is None:
                self._point(c, name, "", version=version)
            self._bump(c)
        return version

    def promote(self, name: str, version: int | str) -> None:
        """NAME serves VERSION alone (ends a split)."""
        with write_transaction(self.engine) as c:
            self._point(c, name, "", version=self._existing(c, name, parse_version(version)))
            self._bump(c)

    def alias(self, name: str, alias: str, version: int | str) -> None:
        """NAME@ALIAS serves VERSION (e.g. chat@prod -> 3)."""
        _check_name(alias, "alias")
        if _VERSION.fullmatch(alias):
            raise RegistryError(f"alias {alias!r} looks like a version number; NAME@vN already means version N")
        with write_transaction(self.engine) as c:
            self._point(c, name, alias, version=self._existing(c, name, parse_version(version)))
            self._bump(c)

    def split(self, name: str, weights: dict[int | str, float]) -> None:
        """NAME serves its versions by these percentages (summing to 100), by a stable hash of the subject."""
        split = {parse_version(v): float(w) for v, w in weights.items()}
        bad = [f"v{v}={w:g}" for v, w in split.items() if not math.isfinite(w) or w < 0]
        if bad or not split or abs(sum(split.values()) - 100) > 1e-6:
            shown = " ".join(f"v{v}={w:g}" for v, w in split.items())
            raise RegistryError(f"split {shown or '(empty)'} for {name!r}: weights are percentages >= 0 "
                                "that sum to 100, e.g. v3=90 v4=10")
        with write_transaction(self.engine) as c:
            for version in split:
                self._existing(c, name, version)
            live = {v: w for v, w in split.items() if w > 0}
            if len(live) == 1:
                self._point(c, name, "", version=next(iter(live)))
            else:
                self._point(c, name, "", split={str(v): w for v, w in sorted(split.items())})
            self._bump(c)

    def rollback(self, reference: str) -> dict:
        """NAME (or NAME@alias) goes back to what it served before its last change, all traffic at
        once; returns the state now served ({"version": N} or {"split": {...}})."""
        name, target = parse_reference(reference)
        with write_transaction(self.engine) as c:
            self._known(c, name)
            history = self._history(c, name, target)
            if len(history) < 2:
                raise RegistryError(f"{reference!r} has no earlier state to roll back to "
                                    f"(see: tunesmith registry show {name})")
            c.execute(t.pointers.update().where(t.pointers.c.id == history[0].id).values(rolled_back=True))
            self._bump(c)
            return _state(history[1])

    # --- reads ------------------------------------------------------------------------------
    def generation(self) -> int:
        """A counter bumped by every change above; poll it to notice changes made anywhere."""
        with self.engine.connect() as c:
            return int(c.scalar(sa.select(t.generation.c.value).where(t.generation.c.id == 1)))

    def route(self, reference: str, subject: str | None = None) -> Route | None:
        """Where a request for `NAME`, `NAME@alias` or `NAME@vN` goes; None if it is not registered."""
        name, target = parse_reference(reference)
        with self.engine.connect() as c:
            if _VERSION.fullmatch(target) and target.startswith("v"):
                version = int(target[1:])
            else:
                pointer = self._pointer(c, name, target)
                if pointer is None:
                    return None
                version = pointer.version if pointer.split is None else pick_version(
                    {int(v): w for v, w in pointer.split.items()}, name, subject)
            run_path = c.scalar(sa.select(t.versions.c.run_path).where(
                t.versions.c.name == name, t.versions.c.version == version))
        return Route(name, version, run_path) if run_path is not None else None

    def names(self) -> list[str]:
        with self.engine.connect() as c:
            return list(c.scalars(sa.select(t.versions.c.name).distinct().order_by(t.versions.c.name)))

    def references(self) -> list[str]:
        """Every id a request may name: NAME, NAME@alias, NAME@vN (for /v1/models and bounded metric labels)."""
        with self.engine.connect() as c:
            versions = c.execute(sa.select(t.versions.c.name, t.versions.c.version)).all()
            live = c.execute(sa.select(t.pointers.c.name, t.pointers.c.target).distinct()
                             .where(t.pointers.c.rolled_back.is_(False), t.pointers.c.target != "")).all()
        names = {name for name, _ in versions}
        return sorted(names | {f"{n}@{a}" for n, a in live} | {f"{n}@v{v}" for n, v in versions})

    def list(self) -> list[dict]:
        """One summary per name: versions, what it serves, aliases."""
        rows = []
        for name in self.names():
            shown = self.show(name)
            rows.append({"name": name, "versions": len(shown["versions"]), "latest": shown["versions"][-1]["version"],
                         "serves": shown["serves"], "aliases": shown["aliases"]})
        return rows

    def show(self, name: str) -> dict:
        """Everything about NAME: versions with their eval figures, what it serves, aliases, split, history."""
        with self.engine.connect() as c:
            self._known(c, name)
            versions = [{"version": r.version, "run_path": r.run_path, "note": r.note, "figures": r.figures,
                         "created_at": r.created_at.isoformat()}
                        for r in c.execute(sa.select(t.versions).where(t.versions.c.name == name)
                                           .order_by(t.versions.c.version))]
            history = c.execute(sa.select(t.pointers).where(t.pointers.c.name == name)
                                .order_by(t.pointers.c.id)).all()
        current: dict[str, sa.Row] = {}
        for row in history:
            if not row.rolled_back:
                current[row.target] = row
        serves = _state(current[""]) if "" in current else {}
        return {
            "name": name, "versions": versions, "serves": serves, "split": serves.get("split"),
            "aliases": {target: row.version for target, row in sorted(current.items()) if target},
            "history": [{"target": r.target or "(default)", **_state(r), "rolled_back": r.rolled_back,
                         "at": r.created_at.isoformat()} for r in history],
        }

    # --- traffic and feedback (no generation bump) ----------------------------------------
    def record_request(self, name: str, version: int, status: int, latency_ms: float,
                       subject: str | None = None) -> None:
        """One served request (any status), for the A/B report's traffic, error and latency figures."""
        with write_transaction(self.engine) as c:
            c.execute(t.requests.insert().values(name=name, version=version, status=status,
                                                 latency_ms=float(latency_ms), subject=subject, created_at=_now()))

    def record_completion(self, completion_id: str, name: str, version: int, subject: str | None = None) -> None:
        """Remember which version wrote a completion, so that feedback on it counts for that version."""
        try:
            with write_transaction(self.engine) as c:
                c.execute(t.completions.insert().values(completion_id=completion_id, name=name, version=version,
                                                        subject=subject, created_at=_now()))
        except sa.exc.IntegrityError:
            raise RegistryError(f"completion id {completion_id!r} is already recorded; ids must be unique") from None

    def record_feedback(self, completion_id: str, score: float) -> None:
        """Score a completion (thumbs up/down = 1/0, or any rating); a later score replaces an earlier one."""
        score = float(score)
        if not math.isfinite(score):
            raise RegistryError(f"feedback score {score!r} is not a finite number")
        with write_transaction(self.engine) as c:
            done = c.execute(t.completions.update().where(t.completions.c.completion_id == completion_id)
                             .values(score=score, scored_at=_now()))
            if done.rowcount == 0:
                raise RegistryError(f"unknown completion id {completion_id!r}: feedback needs the id "
                                    "of a completion this server returned")

    def requests_of(self, name: str) -> list[tuple[int, int, float]]:
        """(version, status, latency_ms) of every recorded request for NAME."""
        q = sa.select(t.requests.c.version, t.requests.c.status, t.requests.c.latency_ms)
        with self.engine.connect() as c:
            return [tuple(r) for r in c.execute(q.where(t.requests.c.name == name))]

    def request_log(self, name: str) -> list[tuple[int, int, float, datetime]]:
        """(version, status, latency_ms, time) of every recorded request for NAME, oldest first."""
        q = sa.select(t.requests.c.version, t.requests.c.status, t.requests.c.latency_ms, t.requests.c.created_at)
        with self.engine.connect() as c:
            return [tuple(r) for r in c.execute(q.where(t.requests.c.name == name).order_by(t.requests.c.id))]

    def feedback_of(self, name: str) -> list[tuple[int, float]]:
        """(version, score) of every scored completion of NAME."""
        q = sa.select(t.completions.c.version, t.completions.c.score).where(
            t.completions.c.name == name, t.completions.c.score.is_not(None))
        with self.engine.connect() as c:
            return [tuple(r) for r in c.execute(q)]

    def close(self) -> None:
        self.engine.dispose()

    # --- helpers ----------------------------------------------------------------------------
    def _known(self, c, name: str) -> None:
        if c.scalar(sa.select(t.versions.c.name).where(t.versions.c.name == name).limit(1)) is None:
            raise RegistryNotFound(f"no model named {name!r} in the registry; add one with: "
                                f"tunesmith registry add {name} RUN_DIR")

    def _existing(self, c, name: str, version: int) -> int:
        self._known(c, name)
        if c.scalar(sa.select(t.versions.c.version).where(t.versions.c.name == name,
                                                         t.versions.c.version == version)) is None:
            last = c.scalar(sa.select(sa.func.max(t.versions.c.version)).where(t.versions.c.name == name))
            raise RegistryNotFound(f"{name!r} has no version {version} (versions 1..{last})")
        return version

    def _history(self, c, name: str, target: str) -> list:
        """The live pointer rows of NAME[@target], newest first."""
        return c.execute(sa.select(t.pointers).where(
            t.pointers.c.name == name, t.pointers.c.target == target, t.pointers.c.rolled_back.is_(False))
            .order_by(t.pointers.c.id.desc())).all()

    def _pointer(self, c, name: str, target: str):
        history = self._history(c, name, target)
        return history[0] if history else None

    def _point(self, c, name: str, target: str, version: int | None = None, split: dict | None = None) -> None:
        c.execute(t.pointers.insert().values(name=name, target=target, version=version, split=split,
                                             rolled_back=False, created_at=_now()))

    def _bump(self, c) -> None:
        c.execute(t.generation.update().where(t.generation.c.id == 1).values(value=t.generation.c.value + 1))


def _state(row) -> dict:
    if row.split is not None:
        return {"split": {int(v): w for v, w in row.split.items()}}
    return {"version": row.version}


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name or ""):
        raise RegistryError(f"{what} {name!r} is not valid: use letters, digits, '.', '_' or '-' "
                            "(no '@' or '/'), starting with a letter or digit")


def _finished_run(path: str | Path) -> tuple[Path, dict]:
    """The run's absolute path and its eval figures; refuses anything but a succeeded run."""
    run = RunDir(Path(path).expanduser().resolve())
    if not RunDir.is_run(run.path):
        raise RegistryError(f"{path} is not a run directory (no config.yaml and STATUS); "
                            "register the output folder of `tunesmith train`")
    if run.status() != "succeeded" or not (run.path / "results.json").is_file():
        raise RegistryError(f"{path} is not a finished run (STATUS: {run.status()}); "
                            "register a run whose STATUS is succeeded")
    figures = summarize(run.path).final_metrics
    # NaN is not JSON that PostgreSQL accepts: a figure that is not a finite number is stored as null
    return run.path, {k: v if not isinstance(v, float) or math.isfinite(v) else None
                      for k, v in figures.items() if not k.endswith(("_time", "_per_second"))}
