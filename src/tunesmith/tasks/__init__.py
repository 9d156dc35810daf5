"""Tasks: what the model learns to do. One file each, registered by `register_task`.

A task says which model class to load, how canonical records become features
(token ids and labels), and how features are batched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tunesmith.config.components import TASK_CONFIGS, TaskConfig
from tunesmith.registry import Registry, import_submodules


@dataclass(frozen=True)
class TaskSpec:
    name: str
    summary: str
    config_class: type[TaskConfig]
    model_class: Callable[[], type]  # lazily imported transformers Auto class
    build_features: Callable  # (records, tokenizer, RunConfig) -> (features, TokenizeReport)
    collator: Callable  # (tokenizer) -> callable(list[feature]) -> batch


TASKS: Registry[TaskSpec] = Registry("task")


def register_task(config_class: type[TaskConfig], summary: str, *, model_class, collator):
    """Decorator for a task's `build_features`."""
    name = config_class.model_fields["name"].default

    def wrap(build_features: Callable) -> Callable:
        TASK_CONFIGS.add(name, config_class)
        TASKS.add(name, TaskSpec(name, summary, config_class, model_class, build_features, collator))
        return build_features

    return wrap


import_submodules(__name__, __path__)  # every module in this package registers itself
