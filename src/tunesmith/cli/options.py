"""Command-line options generated from a pydantic options model (data steps, exporters).

Each field becomes `--field-name` with the field's description as help and its default shown;
the model stays the one place an option is declared, typed and validated. Typer builds a
command from a function's signature, so `with_options` gives the command a signature made of
its own parameters plus one keyword parameter per field, and hands the command the options
the user gave, as one dict (the model fills in the rest). How a typed field is written on
the command line:
- a bool: `--name/--no-name`;
- a list: the option repeated and/or comma-separated (`--fields a,b` or `--fields a --fields b`);
- a mapping: `key=value` items the same way (`--target pos=0.5,neg=0.5`); a value without `=`
  is passed as it is (a file name, or a word such as `uniform`);
- anything else: its text, validated by the model.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from typing import List, Optional

import typer
from pydantic import BaseModel


def _kind(annotation) -> str:
    """bool, list, dict or text: how the field is written on the command line."""
    annotation = _bare(annotation)
    args = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    origins = {typing.get_origin(a) or a for a in map(_bare, args) if a is not type(None)}
    for kind, types_ in (("dict", {dict}), ("list", {list}), ("bool", {bool}), ("int", {int}), ("float", {float})):
        if origins & types_ and (kind in ("dict", "list") or len(origins) == 1):
            return kind
    return "text"


def _bare(annotation):
    """The type inside `Annotated[type, ...]` (tags and constraints do not change how it is written)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_union(annotation) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


ANNOTATIONS = {"bool": Optional[bool], "list": Optional[List[str]], "dict": Optional[List[str]],
               "int": Optional[int], "float": Optional[float], "text": Optional[str]}


def option_parameters(model: type[BaseModel], skip=(), flags: dict | None = None,
                      help_prefix: str = "") -> list[inspect.Parameter]:
    """One typer option per field of `model` (except `skip`); `flags` renames a field's flag."""
    params = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        kind = _kind(field.annotation)
        flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
        required = field.is_required()
        default = None if required else field.get_default(call_default_factory=True)
        shown = False if default is None else repr(default)
        option = typer.Option(... if required else None, f"{flag}/--no-{flag[2:]}" if kind == "bool" else flag,
                              help=help_prefix + (field.description or ""), show_default=shown)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=ANNOTATIONS[kind]))
    return params


def option_values(model: type[BaseModel], given: dict) -> dict:
    """The options the user gave, in the shape the model validates (see the module docstring)."""
    out = {}
    for name, value in given.items():
        if value is None:
            continue
        kind = _kind(model.model_fields[name].annotation)
        if kind in ("list", "dict"):
            value = [part.strip() for item in value for part in item.split(",") if part.strip()]
        if kind == "dict" and all("=" in item for item in value):
            value = dict(item.split("=", 1) for item in value)
        elif kind == "dict":
            value = value[0] if len(value) == 1 else value  # a file name or a word: validated by the model
        out[name] = value
    return out


def with_options(*models: type[BaseModel], skip=(), flags: dict | None = None, help_prefix=None):
    """Decorator: the command also takes every field of `models` as an option and receives
    those the user gave as a dict in its `options` parameter (keys may repeat the command's own
    parameter names: the template's `output` beside the output file). `help_prefix(model)` may
    label each model's options."""

    def wrap(command):
        own = [p for p in inspect.signature(command).parameters.values() if p.name != "options"]
        taken = {p.name for p in own}
        fields: dict[str, tuple[type[BaseModel], str]] = {}  # parameter -> (model, field)
        generated = []
        for model in models:
            for param in option_parameters(model, skip, flags, help_prefix(model) if help_prefix else ""):
                if any(name == param.name for _, name in fields.values()):
                    continue  # a field several models share is one option
                key = param.name if param.name not in taken else f"{param.name}_option"
                fields[key] = (model, param.name)
                generated.append(param.replace(name=key))

        @functools.wraps(command)
        def run(**kwargs):
            options = {}
            for model in models:
                given = {name: kwargs[key] for key, (m, name) in fields.items() if m is model}
                options.update(option_values(model, given))
            return command(**{k: v for k, v in kwargs.items() if k not in fields}, options=options)

        run.__signature__ = inspect.Signature(own + generated)
        return run

    return wrap
