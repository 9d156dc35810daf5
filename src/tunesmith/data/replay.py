"""Replay (data.replay): a share of earlier training rows mixed into the new training data.

A source is an earlier run (its training rows as that run read and split them: same files,
max_rows, eval split and seed, so its eval rows never leak into training) or a data file. The
rows are drawn once, seeded, and train in every epoch. `ratio` is their share of the final mix:
replayed / (new + replayed). uniform draws from all sources pooled; per_task the same number
from each source.
"""

from __future__ import annotations

import random
from pathlib import Path

from tunesmith.data.load import load_records
from tunesmith.runs.rundir import RunDir


def source_records(source: str, task) -> list[dict]:
    """The training records of an earlier run, or the records of a file."""
    if RunDir.is_run(source) or Path(source).is_dir():
        from tunesmith.data.prepare import split_records
        from tunesmith.runs.lineage import earlier_config

        return split_records(earlier_config(source, "data.replay.from"), task).train
    return load_records([source], "auto")[0]


def replay_count(new_rows: int, ratio: float) -> int:
    """Replayed rows so that they are `ratio` of new + replayed."""
    return round(new_rows * ratio / (1 - ratio))


def replay_records(replay, new_rows: int, task, seed: int) -> tuple[list[dict], dict]:
    """The replayed records and the report for data_report.json."""
    sources = {source: source_records(source, task) for source in replay.from_}
    wanted, rng = replay_count(new_rows, replay.ratio), random.Random(seed)
    if replay.strategy == "per_task":
        each, extra = divmod(wanted, len(sources))
        counts = {s: each + (i < extra) for i, s in enumerate(sources)}
        drawn = {s: _sample(rows, counts[s], rng) for s, rows in sources.items()}
    else:
        pool = [(s, r) for s, rows in sources.items() for r in rows]
        picked = _sample(pool, wanted, rng)
        drawn = {s: [r for src, r in picked if src == s] for s in sources}
    rows = [r for part in drawn.values() for r in part]
    report = {"ratio": replay.ratio, "strategy": replay.strategy, "rows": len(rows),
              "share": round(len(rows) / max(new_rows + len(rows), 1), 4),
              "sources": {s: {"available": len(sources[s]), "drawn": len(drawn[s])} for s in sources}}
    return rows, report


def _sample(rows: list, count: int, rng: random.Random) -> list:
    """`count` rows without repeats while there are enough, then whole passes again."""
    if not rows:
        return []
    whole, rest = divmod(count, len(rows))
    return rows * whole + rng.sample(rows, rest)
