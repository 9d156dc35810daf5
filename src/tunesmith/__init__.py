"""tunesmith: fine-tune a pretrained language model into a specialist, end to end."""

from tunesmith import methods, tasks  # noqa: F401  (fill the registries)
from tunesmith.config import RunConfig, load_config
from tunesmith.continual import regularisers  # noqa: F401  (continual-learning regularisers)
from tunesmith.data import steps  # noqa: F401  (data pipeline steps)
from tunesmith.errors import TunesmithError
from tunesmith.runs.cancel import CancelToken
from tunesmith.runs.rundir import RunDir


def train(config, *, resume: bool = False, callbacks=(), cancel=None, events=None):
    """Run one fine-tuning job and return its RunResult; see tunesmith.training.runner.train.
    `cancel`: a tunesmith.CancelToken; `events`: a callable (or several) receiving every event."""
    from tunesmith.training.runner import train as _train

    return _train(config, resume=resume, callbacks=callbacks, cancel=cancel, events=events)


__all__ = ["CancelToken", "RunConfig", "RunDir", "TunesmithError", "load_config", "train"]
