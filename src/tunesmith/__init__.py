"""tunesmith: fine-tune a pretrained language model into a specialist, end to end."""

from tunesmith import methods, tasks  # noqa: F401  (fill the registries)
from tunesmith.config import RunConfig, load_config
from tunesmith.data import steps  # noqa: F401  (data pipeline steps)
from tunesmith.errors import TunesmithError


def train(config, *, resume: bool = False):
    """Run one fine-tuning job; see tunesmith.training.runner.train."""
    from tunesmith.training.runner import train as _train

    return _train(config, resume=resume)


__all__ = ["RunConfig", "TunesmithError", "load_config", "train"]
