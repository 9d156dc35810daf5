"""The transformers Trainer, with one behaviour of ours."""

from __future__ import annotations

from functools import partial

import torch
from transformers import Trainer

from tunesmith.training.batching import REAL_TOKENS
from tunesmith.training.loss import labelled_logits_loss

_RUNTIME = ("_runtime", "_samples_per_second", "_steps_per_second")


class TunesmithTrainer(Trainer):
    """Evaluation leaves the global RNG untouched, so dropout draws after an eval are the same
    whether or not the eval ran: a resumed run replays an uninterrupted one exactly.

    `make_optimizer(model, optimizer_cls, optimizer_kwargs, args)`: a method's own optimizer
    (LoRA+ parameter groups), built from the optimizer class and settings the arguments chose."""

    def __init__(self, *args, make_optimizer=None, **kwargs):
        self.make_optimizer = make_optimizer
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        if self.make_optimizer is None or self.optimizer is not None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        self.optimizer = self.make_optimizer(model, optimizer_cls=optimizer_cls,
                                             optimizer_kwargs=optimizer_kwargs, args=self.args)
        return self.optimizer

    def _prepare_inputs(self, inputs):
        """The model's inputs: without the collator's token count (training/batching.py)."""
        return super()._prepare_inputs({k: v for k, v in inputs.items() if k != REAL_TOKENS})

    def _track_num_input_tokens(self, inputs):
        """num_input_tokens_seen from the collator's count where a batch has one (packing), instead
        of transformers' fallback that warns every step and counts padding."""
        if REAL_TOKENS not in inputs or self.args.include_num_input_tokens_seen == "no":
            return super()._track_num_input_tokens(inputs)
        real = torch.as_tensor(inputs[REAL_TOKENS], device=self.args.device, dtype=torch.int64)
        self.state.num_input_tokens_seen += self.accelerator.gather(real).sum().item()

    # Set by the runner: more eval sets ({name: features}) measured with every evaluation of the run's
    # own eval set and reported beside it as eval_<name>_loss (multi-task's tasks, earlier tasks).
    extra_evals: dict = {}

    # Set by a task whose compute_metrics is bound to the run's eval set (classification, qa):
    # features -> the compute_metrics of another eval set (a task of data.tasks, an earlier task's).
    metrics_for = None

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        with torch.random.fork_rng(devices=[]):
            if eval_dataset is not None:
                return self._evaluate_other(eval_dataset, ignore_keys, metric_key_prefix)
            if metric_key_prefix != "eval" or not self.extra_evals:
                return super().evaluate(None, ignore_keys, metric_key_prefix)
            extra = {}
            for name, features in self.extra_evals.items():  # first: the run's own evaluation is the last one seen
                # self.evaluate: a task's trainer (label words) measures each set its own way too
                extra.update(self.evaluate(features, ignore_keys, f"eval_{name}"))
            metrics = super().evaluate(None, ignore_keys, metric_key_prefix)
            metrics.update({k: v for k, v in extra.items() if not k.endswith(_RUNTIME)})  # in place: callbacks hold it
            return metrics

    def _evaluate_other(self, eval_dataset, ignore_keys, metric_key_prefix):
        """Another eval set than the run's, scored by its own compute_metrics where the task gives one."""
        if self.metrics_for is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        whole, self.compute_metrics = self.compute_metrics, self.metrics_for(eval_dataset)
        try:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        finally:
            self.compute_metrics = whole

    # Set by the runner: a continual regulariser's penalty(model) -> scalar added to the training loss.
    penalty = None

    def training_step(self, model, inputs, num_items_in_batch=None):
        """The task's step, then the regulariser's penalty backpropagated on its own (once per micro-batch,
        divided by the accumulation steps: once per optimizer step in effect), so every loss path keeps it.
        The logged loss stays the task's, comparable with runs without a regulariser."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.penalty is not None:
            self.accelerator.backward(self.penalty(model) / self.args.gradient_accumulation_steps)
        return loss

    # Set by the runner when train.labelled_logits_only holds and the model supports it.
    labelled_logits_only = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Training loss with the LM head only on labelled positions (training/loss.py)."""
        plain = self.label_smoother is None and self.compute_loss_func is None
        if self.labelled_logits_only and plain and not return_outputs and "labels" in inputs:
            items = num_items_in_batch if self.model_accepts_loss_kwargs else None
            loss = labelled_logits_loss(model, inputs, items)
            if loss is not None:
                return loss * self._token_average_scale(items)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _token_average_scale(self, items) -> int:
        """As the Trainer's own loss: with `items` counted over all processes, each process's loss is
        its share of the global mean, and DDP averages gradients, so the share is scaled back up."""
        if items is not None and self.args.average_tokens_across_devices:
            return self.accelerator.num_processes
        return 1

    # Set by the runner when evaluation batches differently from training (packing: eval keeps
    # padded batches, so eval loss means what it means in every other tool).
    eval_data_collator = None

    def get_eval_dataloader(self, eval_dataset=None):
        if self.eval_data_collator is None:
            return super().get_eval_dataloader(eval_dataset)
        train_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = train_collator

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Loss-only evaluation takes the labelled-logits path too: no full (batch, seq, vocab)
        logits, the largest tensor of an eval step; same batch-mean loss as the standard path."""
        if self.labelled_logits_only and prediction_loss_only and "labels" in inputs:
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad(), self.compute_loss_context_manager():
                loss = labelled_logits_loss(model, inputs)
            if loss is not None:
                return loss.detach(), None, None
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)


def with_optimizer(trainer_class, make_optimizer):
    """`trainer_class` building its optimizer with `make_optimizer` (a method's own, LoRA+): a subclass,
    not a partial, so that a task's trainer (label words, classification) can subclass it in turn.
    A partial (distillation's trainer with its teacher) keeps its arguments around the subclass."""
    if isinstance(trainer_class, partial):
        return partial(with_optimizer(trainer_class.func, make_optimizer), *trainer_class.args,
                       **trainer_class.keywords)

    class WithOptimizer(trainer_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, make_optimizer=make_optimizer, **kwargs)

    return WithOptimizer
