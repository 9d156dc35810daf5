"""Options of data pipeline steps: `data.pipeline: [{step: dedup, threshold: 0.8}, ...]`.

Each step module (tunesmith/data/steps/) declares a StepOptions subclass with documented
fields and registers it in STEP_OPTIONS; the run config validates every entry against the
class its `step` names, with did-you-mean hints for unknown steps and options.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunesmith.config.components import ComponentError, component_problems
from tunesmith.registry import Registry


class StepOptions(BaseModel):
    """Options of one data step, chosen by `step`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    step: str = Field(description="Registered name of the step (`tunesmith data steps`).")


STEP_OPTIONS: Registry[type[StepOptions]] = Registry("data step")
FILE = {"file": True}  # json_schema_extra of an option naming files: relative to the config's folder in a run


def parse_steps(value) -> list[StepOptions]:
    """Validate a list of step mappings; all problems are collected as ComponentError."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("must be a list of steps, e.g. [{step: dedup}, {step: clean}]")
    steps, problems = [], []
    for i, entry in enumerate(value):
        try:
            steps.append(parse_step(entry))
        except ComponentError as err:
            problems += [(f"{i}.{key}", msg) for key, msg in err.problems]
    if problems:
        raise ComponentError(problems)
    return steps


def parse_step(entry) -> StepOptions:
    if isinstance(entry, StepOptions):
        return entry
    if isinstance(entry, str):
        entry = {"step": entry}
    if not isinstance(entry, dict) or "step" not in entry:
        raise ComponentError([("step", f"each entry needs a 'step' name (got {entry!r})")])
    name = entry["step"]
    if name not in STEP_OPTIONS:
        raise ComponentError([("step", STEP_OPTIONS.unknown_message(name))])
    cls = STEP_OPTIONS.get(name)
    try:
        return cls.model_validate(entry)
    except ValidationError as err:
        unknown = f"unknown option of step {cls.model_fields['step'].default!r}"
        raise ComponentError(component_problems(err, cls, unknown)) from None
