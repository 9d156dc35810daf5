from tunesmith.config.components import MethodConfig, TaskConfig
from tunesmith.config.load import load_config, validate_config
from tunesmith.config.schema import RunConfig

__all__ = ["MethodConfig", "RunConfig", "TaskConfig", "load_config", "validate_config"]
