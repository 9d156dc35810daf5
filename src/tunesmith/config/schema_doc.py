"""The JSON schema of RunConfig plus the options of every registered component."""

from __future__ import annotations

from tunesmith.config.components import METHOD_CONFIGS, REGULARISER_CONFIGS, TASK_CONFIGS
from tunesmith.config.schema import RunConfig


def full_schema() -> dict:
    schema = RunConfig.model_json_schema()
    schema["x-methods"] = {name: METHOD_CONFIGS.get(name).model_json_schema() for name in METHOD_CONFIGS.names()}
    schema["x-tasks"] = {name: TASK_CONFIGS.get(name).model_json_schema() for name in TASK_CONFIGS.names()}
    schema["x-regularisers"] = {name: REGULARISER_CONFIGS.get(name).model_json_schema()
                                for name in REGULARISER_CONFIGS.names()}
    return schema
