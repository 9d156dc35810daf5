"""What a method trains on a given model: `tunesmith methods show NAME --model M`."""

from __future__ import annotations

from dataclasses import dataclass

from tunesmith.config.schema import RunConfig
from tunesmith.errors import ConfigError
from tunesmith.methods import METHODS, trainable_parameters
from tunesmith.models import load_model, resolve_model
from tunesmith.tasks import TASKS


@dataclass
class Footprint:
    method: str
    model: str
    trainable: int
    total: int  # base parameters plus any the method adds

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0


def method_footprint(config: RunConfig) -> Footprint:
    """Load the config's model, apply its method, count what trains (nothing is trained)."""
    method, task = METHODS.get(config.method.name), TASKS.get(config.task.name)
    reason = method.refusal(task)
    if reason:
        raise ConfigError(reason)
    model_dir = resolve_model(config.model.name_or_path)
    model = load_model(model_dir, task.model_class(),
                       config.model.trust_remote_code,
                       **method.load_kwargs(config.method))
    model = method.apply(model, config.method)
    trainable, total = trainable_parameters(model)
    return Footprint(method.name, config.model.name_or_path, trainable, total)
