"""template: structured records (csv columns, database rows) -> instruction or text rows via
Jinja templates, e.g. {"patient_id": "P001", "diagnosis": "T2DM"} -> a sentence."""

from __future__ import annotations

from typing import Literal

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import Field, model_validator

from tunesmith.config.pipeline import StepOptions
from tunesmith.data.records import ORIGIN
from tunesmith.data.steps import Step, register_step
from tunesmith.errors import DataError

OUTPUT_KEYS = ("instruction", "input", "output", "system", "text")


class TemplateOptions(StepOptions):
    step: Literal["template"] = "template"
    instruction: str | None = Field(None, description="Jinja template of the instruction, e.g. "
                                    "'Summarise the record of patient {{ patient_id }}.'")
    input: str | None = Field(None, description="Jinja template of the input (optional).")
    output: str | None = Field(None, description="Jinja template of the expected answer.")
    system: str | None = Field(None, description="Jinja template of a system prompt (optional).")
    text: str | None = Field(None, description="Jinja template of a plain-text row (pretraining); "
                             "instead of instruction/output.")
    keep_fields: bool = Field(True, description="Keep the original columns beside the new ones "
                              "(later steps can split or balance on them).")

    @model_validator(mode="after")
    def _one_shape(self):
        if bool(self.text) == bool(self.instruction or self.output):
            raise ValueError("give either text, or instruction and output")
        if not self.text and not (self.instruction and self.output):
            raise ValueError("instruction rows need both instruction and output templates")
        return self


@register_step
class Template(Step):
    Options = TemplateOptions
    reshapes_rows = True
    summary = "render structured records into instruction or text rows with Jinja templates"
    example = {"instruction": "Classify: {{ input }}", "output": "{{ label }}"}

    def __call__(self, rows: list[dict]) -> list[dict]:
        # Sandboxed: a template comes from the user's command line or config and must not reach
        # Python internals (e.g. {{ ''.__class__.__mro__ }}) or mutate the row.
        env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
        compiled = {}
        for key in OUTPUT_KEYS:
            source = getattr(self.options, key)
            if source:
                try:
                    compiled[key] = env.from_string(source)
                except jinja2.TemplateSyntaxError as err:
                    raise DataError(f"template {key}: {err.message} (line {err.lineno})") from None
        out = [self._render(row, compiled) for row in rows]
        self.details = {"fields": list(compiled)}
        return out

    def _render(self, row: dict, compiled: dict) -> dict:
        values = {k: v for k, v in row.items() if k != ORIGIN}
        rendered = {}
        for key, template in compiled.items():
            try:
                rendered[key] = template.render(**values).strip()
            except jinja2.UndefinedError as err:
                columns = ", ".join(values)
                raise DataError(f"{row.get(ORIGIN, '?')}: template {key}: {err.message}; "
                                f"this row has columns: {columns}") from None
            except jinja2.sandbox.SecurityError as err:
                raise DataError(f"template {key}: not allowed in a template ({err})") from None
            except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as err:
                raise DataError(f"{row.get(ORIGIN, '?')}: template {key} failed: {err}") from None
        base = {k: v for k, v in row.items() if k not in OUTPUT_KEYS} if self.options.keep_fields else {}
        return {**base, **rendered, ORIGIN: row.get(ORIGIN, "?")}
