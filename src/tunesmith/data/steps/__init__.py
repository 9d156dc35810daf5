"""Data pipeline steps: one file each, registered here by `register_step`.

A step is a class with an `Options` model (documented pydantic fields, validated in
`data.pipeline` of a run config and by the `tunesmith data` commands) and a
`__call__(rows) -> rows`. Rows are dicts as the user wrote them plus `_origin` ("file:line"),
so steps can use the user's own fields (labels, groups, dates). While it runs a step fills
`self.details` (what it removed and why, by origin); `run_pipeline` adds rows in/out.
Importing this package registers every built-in step.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from tunesmith.config.components import ComponentError
from tunesmith.config.pipeline import STEP_OPTIONS, StepOptions, parse_step
from tunesmith.errors import ConfigError
from tunesmith.registry import Registry, import_submodules
from tunesmith.utils.progress import say


@dataclass
class StepReport:
    step: str
    rows_in: int
    rows_out: int
    seconds: float
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class Step(ABC):
    """Base of every data step; subclasses set `Options` and `summary` and define __call__."""

    Options: ClassVar[type[StepOptions]]
    summary: ClassVar[str] = ""
    name: ClassVar[str] = ""
    reshapes_rows: ClassVar[bool] = False  # True: rows change shape (predict applies it to new rows too)
    # Options of a typical use (a data.pipeline entry). tests/test_steps_contract.py runs every step
    # with them on rows with instruction/input/output/label/group/date fields read from
    # train.jsonl and extra.jsonl, with eval.jsonl beside them.
    example: ClassVar[dict] = {}
    streams: ClassVar[bool] = False  # True: `stream` keeps rows one by one (files bigger than memory)

    def __init__(self, options: StepOptions | None = None, context: dict | None = None, **kwargs):
        self.options = options if options is not None else self.Options(**kwargs)
        self.context = context or {}  # run facts a step may use: seed, eval_files
        self.details: dict = {}

    @abstractmethod
    def __call__(self, rows: list[dict]) -> list[dict]:
        """The rows after this step (and self.details filled for the report)."""

    def stream(self, rows: Iterable[dict]) -> Iterator[dict]:
        """The rows this step keeps, one at a time; for steps with `streams` (self.details filled
        once the rows are exhausted)."""
        raise NotImplementedError(f"data step {self.name} does not stream")

    def seed(self) -> int:
        own = getattr(self.options, "seed", None)
        return own if own is not None else self.context.get("seed", 42)


STEPS: Registry[type[Step]] = Registry("data step")


def register_step(cls: type[Step]) -> type[Step]:
    """Class decorator: the step's name is the default of its Options' `step` field."""
    cls.name = cls.Options.model_fields["step"].default
    STEP_OPTIONS.register(cls.Options, cls.name)
    STEPS.register(cls)
    return cls


def build_step(options: StepOptions | dict | str, context: dict | None = None) -> Step:
    """A ready step from its options; bad options are one ConfigError naming each key."""
    try:
        options = parse_step(options)
    except ComponentError as err:
        name = options.get("step", "?") if isinstance(options, dict) else options
        raise ConfigError(f"data step {name}: " + "; ".join(
            f"{k}: {m.removeprefix('Value error, ')}" for k, m in err.problems)) from None
    return STEPS.get(options.step)(options, context)


def run_step(step: Step, rows: list[dict]) -> tuple[list[dict], StepReport]:
    start = time.perf_counter()
    out = step(rows)
    return out, StepReport(step.name, len(rows), len(out), round(time.perf_counter() - start, 3), step.details)


def run_pipeline(rows: list[dict], steps: list, context: dict | None = None) -> tuple[list[dict], list[StepReport]]:
    """Apply the steps in order; one report per step."""
    reports = []
    for options in steps:
        rows, report = run_step(build_step(options, context), rows)
        say(f"data step {report.step}: {report.rows_in} -> {report.rows_out} rows")
        reports.append(report)
    return rows, reports


import_submodules(__name__, __path__)  # every module in this package registers itself
