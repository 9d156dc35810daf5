"""Format checks on outputs alone: a regular expression, or JSON validity against a schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tunesmith.metrics import register_metric
from tunesmith.metrics.text_utils import MetricInputError, check_pairs, mean

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


@register_metric("regex", "share of outputs matching a regular expression (option: pattern)",
                 needs_references=False)
def regex(predictions: list[str], references=None, pattern: str | None = None, mode: str = "fullmatch") -> dict:
    check_pairs("regex", predictions, references, needs_references=False)
    if not pattern:
        raise MetricInputError("metric regex needs a pattern: --metric-option regex.pattern='^\\d+$'")
    if mode not in ("fullmatch", "search"):
        raise MetricInputError(f"metric regex: mode {mode!r} must be fullmatch or search")
    try:
        compiled = re.compile(pattern, re.DOTALL)
    except re.error as err:
        raise MetricInputError(f"metric regex: pattern {pattern!r} is not a valid regular expression: {err}") from None
    match = compiled.fullmatch if mode == "fullmatch" else compiled.search
    rows = [{"regex_match": float(match(p.strip()) is not None)} for p in predictions]
    return {"regex_match": mean(r["regex_match"] for r in rows), "rows": rows}


def load_schema(schema) -> dict | None:
    """A schema given inline (dict or JSON text) or as a path to a .json file."""
    if schema is None or isinstance(schema, dict):
        return schema
    text = str(schema)
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise MetricInputError(f"metric json: schema file {path} does not exist")
        text = path.read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as err:
        raise MetricInputError(f"metric json: the schema is not valid JSON ({err})") from None
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(loaded)
    except SchemaError as err:
        raise MetricInputError(f"metric json: the schema is invalid: {err.message}") from None
    return loaded


def _parse(text: str):
    fenced = _FENCE.match(text)  # models often wrap JSON in a markdown code fence
    return json.loads(fenced.group(1) if fenced else text)


@register_metric("json", "share of outputs that parse as JSON and (option: schema) validate",
                 needs_references=False)
def json_check(predictions: list[str], references=None, schema=None) -> dict:
    check_pairs("json", predictions, references, needs_references=False)
    schema = load_schema(schema)
    validator = None
    if schema is not None:
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(schema)
    rows = [_check_one(p, validator) for p in predictions]
    result = {"json_valid": mean(r["json_valid"] for r in rows)}
    if validator is not None:
        result["json_schema_valid"] = mean(r["json_schema_valid"] for r in rows)
    result["rows"] = rows
    return result


def _check_one(text: str, validator) -> dict:
    try:
        value = _parse(text)
    except json.JSONDecodeError as err:
        row = {"json_valid": 0.0, "note": f"not JSON: {err.msg} at char {err.pos}"}
        if validator is not None:
            row["json_schema_valid"] = 0.0
        return row
    row = {"json_valid": 1.0}
    if validator is not None:
        error = next(iter(validator.iter_errors(value)), None)
        row["json_schema_valid"] = float(error is None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            row["note"] = f"schema: {where}: {error.message}"
    return row
