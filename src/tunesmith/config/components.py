"""Base classes for per-component options (methods, tasks) and the registry of their configs.

A method or task module declares a subclass with its own documented fields and registers
it here; `RunConfig` looks the class up by `name` when it validates `method:` or `task:`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunesmith.registry import Registry


class ComponentError(ValueError):
    """Problems inside a component's options; `problems` holds (key, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))


class ComponentConfig(BaseModel):
    """Options of one registered component, chosen by `name`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    name: str = Field(description="Registered name of the component.")


class MethodConfig(ComponentConfig):
    """Base of every fine-tuning method's options."""


class TaskConfig(ComponentConfig):
    """Base of every task's options."""


class RegulariserConfig(ComponentConfig):
    """Base of every continual-learning regulariser's options (continual/regularisers/)."""


METHOD_CONFIGS: Registry[type[MethodConfig]] = Registry("method")
REGULARISER_CONFIGS: Registry[type[RegulariserConfig]] = Registry("regulariser")
TASK_CONFIGS: Registry[type[TaskConfig]] = Registry("task")


def parse_component(registry: Registry, value, default_name: str):
    """Validate a dict (or a bare name) into the registered config class it names."""
    if isinstance(value, ComponentConfig):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping with a 'name' key, got {type(value).__name__}")
    value = {"name": default_name, **value}
    name = value["name"]
    if name not in registry:
        raise ValueError(registry.unknown_message(name))
    cls = registry.get(name)
    try:
        return cls.model_validate(value)
    except ValidationError as err:
        raise ComponentError(component_problems(err, cls)) from None


def component_problems(err: ValidationError, cls: type[BaseModel], unknown: str = "unknown key") -> list[tuple[str, str]]:
    """(key, message) for each error inside a component, with a did-you-mean for unknown keys."""
    import difflib

    problems = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(e["loc"][-1]), list(cls.model_fields), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(cls.model_fields)}"
            problems.append((key, f"{unknown} ({hint})"))
        else:
            problems.append((key, f"{e['msg'].removeprefix('Value error, ')} (got {e.get('input')!r})"))
    return problems
