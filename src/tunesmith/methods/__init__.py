"""Fine-tuning methods: one file each, registered here by `register_method`.

A method is a config class (documented fields, defaults from the papers or PEFT) and an
`apply(model, cfg)` that returns the model with exactly the parameters to train set
`requires_grad`. Importing this package registers every built-in method.

Most methods need nothing else. The few that reach into training or saving declare optional
hooks on their spec (all default to None = the ordinary behaviour):
- `training_args(cfg) -> dict`: TrainingArguments overrides (GaLore's optimizer);
- `optimizer(model, cfg, optimizer_cls, optimizer_kwargs, args) -> Optimizer` (LoRA+ groups);
- `callbacks(model, cfg) -> list[TrainerCallback]` (AdaLoRA's rank budget schedule);
- `save(model, directory)` / `load(base_model, directory) -> model`: adapters that are not
  plain PEFT ones (bottleneck adapters; PiSSA/OLoRA converted back to plain LoRA on save);
- `load_kwargs(cfg) -> dict`: extra `from_pretrained` arguments (QLoRA's quantisation);
- `unavailable() -> str | None`: why the method cannot run on this machine (QLoRA on a CPU).

A method also says which model heads it trains (`heads`, default all of HEADS); the tasks it
supports follow from each task's model class, and `refusal(task)` explains a mismatch before any
work is done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tunesmith.config.components import METHOD_CONFIGS, MethodConfig
from tunesmith.registry import Registry, import_submodules

# A task's head is its transformers Auto class; methods name the heads they train.
HEADS = {
    "AutoModelForCausalLM": "causal-lm",
    "AutoModelForSequenceClassification": "seq-cls",
    "AutoModelForQuestionAnswering": "qa",
    "AutoModelForSeq2SeqLM": "seq2seq",
}
ALL_HEADS = tuple(HEADS.values())


def head_of(task) -> str:
    """The head a TaskSpec trains, e.g. "seq-cls" for classification."""
    auto_class = task.model_class().__name__
    return HEADS.get(auto_class, auto_class)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    summary: str
    config_class: type[MethodConfig]
    apply: Callable  # (model, cfg) -> trainable model
    mergeable: bool  # can the trained weights be folded into the base model?
    saves_adapter: bool  # True: run/adapter (PEFT); False: run/model (full weights)
    heads: tuple[str, ...] = ALL_HEADS
    training_args: Callable | None = None
    optimizer: Callable | None = None
    callbacks: Callable | None = None
    save: Callable | None = None
    load: Callable | None = None
    load_kwargs: Callable | None = None
    unavailable: Callable | None = None
    peft: bool = True  # saves a PEFT adapter that plain `PeftModel.from_pretrained` loads

    @property
    def tasks(self) -> tuple[str, ...]:
        """Registered tasks whose model head this method trains."""
        from tunesmith.tasks import TASKS

        return tuple(t.name for t in TASKS if head_of(t) in self.heads)

    def refusal(self, task) -> str | None:
        """Why this method cannot train `task` here (None: it can)."""
        reason = self.unavailable() if self.unavailable else None
        head = head_of(task)
        if reason or head in self.heads:
            return reason
        others = [m.name for m in METHODS if head in m.heads]
        return (f"method.name: {self.name} does not train {head} models (task {task.name}); "
                f"it trains {', '.join(self.heads)}. Methods for task {task.name}: {', '.join(others)}")

    def save_trained(self, model, directory) -> None:
        (self.save or (lambda m, d: m.save_pretrained(d)))(model, directory)

    def load_adapter(self, base_model, directory):
        if self.load:
            return self.load(base_model, directory)
        from peft import PeftModel

        return PeftModel.from_pretrained(base_model, directory)


METHODS: Registry[MethodSpec] = Registry("method")


def register_method(config_class: type[MethodConfig], summary: str, *, mergeable: bool,
                    saves_adapter: bool, heads: tuple[str, ...] = ALL_HEADS, **hooks):
    """Decorator for a method's `apply`; the config's `name` default is the method's name.
    `hooks` are the optional MethodSpec fields described in this module's docstring."""
    name = config_class.model_fields["name"].default

    def wrap(apply: Callable) -> Callable:
        METHOD_CONFIGS.add(name, config_class)
        hooks.setdefault("peft", saves_adapter)
        METHODS.add(name, MethodSpec(name, summary, config_class, apply, mergeable, saves_adapter,
                                     heads, **hooks))
        return apply

    return wrap


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


# bitsandbytes (needed by galore-torch, imported by peft) warns on every import on CPUs
# without its optional `kernels` package; the warning is about 4-bit CPU kernels we never use.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

import_submodules(__name__, __path__)  # every module in this package registers itself
