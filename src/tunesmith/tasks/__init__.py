"""Tasks: what the model learns to do. One file each, registered by `register_task`.

A task says which model class to load, how canonical records become features
(token ids and labels), and how features are batched. Optional hooks let a task read its
own columns (`data_format`), check each row as training will (`check_row`, which `tunesmith data
validate` applies too, and `layouts`, what a row may look like), size the model head
(`model_kwargs`), bring its own trainer and metrics (`make_trainer`) and answer new rows
(`predict`); tasks without them get the defaults.
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
    data_format: str | None = None  # row format used when data.format is auto (e.g. "rows")
    model_kwargs: Callable | None = None  # (config, tokenizer) -> extra from_pretrained kwargs
    make_trainer: Callable | None = None  # (TrainerParts) -> Trainer; None: the default Trainer
    predict: Callable | None = None  # (model, tokenizer, records, config, batch_size) -> (rows, metrics)
    expand_records: Callable | None = None  # (records) -> records: one file row holding many (a SQuAD file)
    # The canonical records it learns from as a language model: "messages" (chats: without its
    # own `predict` it answers by generating replies) or "text" (plain text: scores any corpus).
    reads: str | None = None
    # (record, task config) -> None, RowError for a row the task cannot learn from. Training drops or
    # stops at such rows before build_features, and `data validate` reports them: one rule for both.
    check_row: Callable | None = None
    layouts: Callable | None = None  # (task config) -> str: the row layouts the task reads, for messages
    # (training records, task config) -> None: settings the task reads off the training rows (classification's
    # label set) when not given. build_features learns them too; data.tasks learns them first on every
    # task's rows, before the mix, so that a task drawn little still brings its labels (the union).
    learn: Callable | None = None

    @property
    def lm_loss(self) -> bool:
        """Its eval loss is a language model's mean loss per token, so exp(loss) is a perplexity;
        not for a classification head's loss or a preference objective (DPO, KTO ...)."""
        from tunesmith.tasks.collate import CausalLMCollator

        return self.collator is CausalLMCollator


@dataclass
class TrainerParts:
    """What the runner hands a task's `make_trainer`: everything but the trainer itself."""

    config: object  # RunConfig
    model: object
    tokenizer: object
    train: list[dict]
    eval: list[dict]
    callbacks: list
    run_dir: object  # pathlib.Path of the run directory
    arguments: Callable  # (args_class=TrainingArguments, **extra) -> args for this run
    trainer_class: type  # the project's Trainer subclass, for tasks that keep transformers' loop


TASKS: Registry[TaskSpec] = Registry("task")


def register_task(config_class: type[TaskConfig], summary: str, *, model_class, collator,
                  data_format: str | None = None, model_kwargs: Callable | None = None,
                  make_trainer: Callable | None = None, predict: Callable | None = None,
                  expand_records: Callable | None = None, reads: str | None = None,
                  check_row: Callable | None = None, layouts: Callable | None = None,
                  learn: Callable | None = None):
    """Decorator for a task's `build_features`."""
    name = config_class.model_fields["name"].default

    def wrap(build_features: Callable) -> Callable:
        TASK_CONFIGS.register(config_class, name)
        TASKS.register(TaskSpec(name, summary, config_class, model_class, build_features, collator,
                                 data_format, model_kwargs, make_trainer, predict, expand_records, reads,
                                 check_row, layouts, learn))
        return build_features

    return wrap


import_submodules(__name__, __path__)  # every module in this package registers itself
