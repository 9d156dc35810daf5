"""Fine-tuning methods: one file each, a `Method` subclass registered by `@register_method`.

A method is, like PEFT's `BaseTuner`, one required method and a few attributes:
- `config_class`: the options (documented fields, defaults from the papers or PEFT); its `name`
  default is the method's name;
- `summary`, `mergeable` (can the trained weights be folded into the base model?),
  `saves_adapter` (True: run/adapter; False: run/model with the full weights), `heads`;
- `apply(model, cfg)`: the model with exactly the parameters to train set `requires_grad`.

Everything else is an ordinary method of `Method` with the ordinary behaviour; the few methods
that reach into training or saving override one (GaLore's optimizer arguments, LoRA+'s groups,
AdaLoRA's rank schedule, QLoRA's quantised loading, bottleneck adapters' own files). State a
method keeps between `apply` and `save_trained` lives in the method, in a
`weakref.WeakKeyDictionary` keyed by the model (one instance serves any number of models and
forgets each with it), never as attributes on the model. Importing this package registers every method.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

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
# Base learning rates for `train.learning_rate: auto`: PEFT adapters take ~10x the rate of full
# fine-tuning; partial (freeze-style) training sits between.
ADAPTER_LR, PARTIAL_LR, FULL_LR = 2e-4, 5e-5, 1e-5


def head_of(task) -> str:
    """The head a TaskSpec trains, e.g. "seq-cls" for classification."""
    auto_class = task.model_class().__name__
    return HEADS.get(auto_class, auto_class)


class Method(ABC):
    """Base of every fine-tuning method; the registry holds one instance of each."""

    config_class: ClassVar[type[MethodConfig]]
    summary: ClassVar[str]
    mergeable: ClassVar[bool]
    saves_adapter: ClassVar[bool]
    heads: ClassVar[tuple[str, ...]] = ALL_HEADS
    trains_every_weight: ClassVar[bool] = False  # gradients and optimizer state for every weight
    # A method with its own optimizer defines `optimizer(model, cfg, optimizer_cls,
    # optimizer_kwargs, args) -> Optimizer` (LoRA+); None: the Trainer's, and its class unwrapped.
    optimizer: ClassVar[Callable | None] = None

    @abstractmethod
    def apply(self, model, cfg):
        """The model (or a wrapper of it) with exactly the parameters to train set requires_grad."""

    @property
    def name(self) -> str:
        return self.config_class.model_fields["name"].default

    @property
    def peft(self) -> bool:
        """Saves a PEFT adapter that plain `PeftModel.from_pretrained` loads."""
        return self.saves_adapter

    @property
    def base_learning_rate(self) -> float:
        """Where `train.learning_rate: auto` starts (then scaled by the batch size)."""
        return ADAPTER_LR if self.saves_adapter else PARTIAL_LR

    def unavailable(self) -> str | None:
        """Why this method cannot run on this machine (None: it can)."""
        return None

    def load_kwargs(self, cfg) -> dict:
        """Extra `from_pretrained` arguments for the base model."""
        return {}

    def training_args(self, cfg) -> dict:
        """TrainingArguments this method sets itself."""
        return {}

    def callbacks(self, model, cfg) -> list:
        """TrainerCallbacks this method needs during training."""
        return []

    def save_trained(self, model, directory) -> None:
        model.save_pretrained(directory)

    def load_adapter(self, base_model, directory):
        from peft import PeftModel

        return PeftModel.from_pretrained(base_model, directory)

    @property
    def tasks(self) -> tuple[str, ...]:
        """Registered tasks whose model head this method trains."""
        from tunesmith.tasks import TASKS

        return tuple(t.name for t in TASKS if head_of(t) in self.heads)

    def refusal(self, task) -> str | None:
        """Why this method cannot train `task` here (None: it can)."""
        reason = self.unavailable()
        head = head_of(task)
        if reason or head in self.heads:
            return reason
        others = [m.name for m in METHODS if head in m.heads]
        return (f"method.name: {self.name} does not train {head} models (task {task.name}); "
                f"it trains {', '.join(self.heads)}. Methods for task {task.name}: {', '.join(others)}")


METHODS: Registry[Method] = Registry("method")


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: registers one instance, under its config's `name` default."""
    method = cls()
    METHOD_CONFIGS.register(cls.config_class, method.name)
    METHODS.register(method)
    return cls


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


# bitsandbytes (needed by galore-torch, imported by peft) warns on every import on CPUs
# without its optional `kernels` package; the warning is about 4-bit CPU kernels we never use.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

import_submodules(__name__, __path__)  # every module in this package registers itself
