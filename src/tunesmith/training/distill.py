"""Knowledge distillation: a student learns the teacher's softened next-token distribution.

loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels), over the
tokens a run trains on (assistant turns). T^2 keeps the KL gradient's scale independent of T
(Hinton et al., 2015). It runs on the foundation's trainer: only compute_loss changes, so
precision, checkpoints, resume, logging and the run directory are a normal run's.
"""

from __future__ import annotations

import functools
from pathlib import Path

from tunesmith.errors import ConfigError, TunesmithError
from tunesmith.training.trainer import TunesmithTrainer
from tunesmith.utils.io import write_json


def distillation_loss(student_logits, teacher_logits, labels, alpha: float, temperature: float,
                      num_items=None):
    """(total, ce, kl) summed over label tokens and divided by `num_items` (or their count)."""
    import torch.nn.functional as F

    vocab = min(student_logits.size(-1), teacher_logits.size(-1))  # embeddings may be padded
    targets = labels[:, 1:]
    mask = targets != -100
    student = student_logits[:, :-1, :vocab][mask].float()
    teacher = teacher_logits[:, :-1, :vocab][mask].float()
    count = num_items if num_items is not None else mask.sum().clamp(min=1)
    ce = F.cross_entropy(student, targets[mask], reduction="sum") / count
    kl = F.kl_div(F.log_softmax(student / temperature, -1), F.log_softmax(teacher / temperature, -1),
                  log_target=True, reduction="sum") / count * temperature ** 2
    return alpha * kl + (1 - alpha) * ce, ce, kl


class DistillTrainer(TunesmithTrainer):
    """TunesmithTrainer whose training loss mixes KL to a frozen teacher with cross-entropy.
    Evaluation reports the student's plain cross-entropy, comparable with any other run."""

    def __init__(self, *args, teacher, alpha: float, temperature: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval().requires_grad_(False)
        self.alpha, self.temperature = alpha, temperature
        self.loss_is_scaled_for_ga = True  # compute_loss normalizes over the accumulated batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        import torch

        # everything but labels: padded batches carry attention_mask, packed ones position_ids
        batch = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**batch)
        if model.training:
            with torch.no_grad():
                teacher_logits = self.teacher(**batch).logits
            count = num_items_in_batch
            if count is None:
                count = (inputs["labels"][:, 1:] != -100).sum().clamp(min=1) * getattr(self, "current_gradient_accumulation_steps", 1)
            loss, _, _ = distillation_loss(outputs.logits, teacher_logits, inputs["labels"],
                                           self.alpha, self.temperature, count)
        else:
            loss, _, _ = distillation_loss(outputs.logits, outputs.logits, inputs["labels"], 0.0, 1.0)
        return (loss, outputs) if return_outputs else loss


def check_shared_vocabulary(teacher_tokenizer, student_tokenizer, teacher: str, student: str) -> None:
    a, b = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if a != b:
        differ = len(set(a.items()) ^ set(b.items()))
        raise TunesmithError(
            f"teacher {teacher} ({len(a)} tokens) and student {student} ({len(b)} tokens) do not share a "
            f"vocabulary ({differ} token ids differ); distillation compares logits token by token, so "
            "choose a student that uses the teacher's tokenizer (same model family)")


def student_config(student: str, data: list[str], out: str | None, overrides: list[str]):
    """A run config for the student: its own YAML, or defaults with full fine-tuning."""
    from tunesmith.config import load_config

    if student.endswith((".yaml", ".yml")):
        if not Path(student).is_file():
            raise ConfigError(f"student config {student} does not exist")
        config = load_config(student, overrides)
    else:
        config = load_config(None, [f"model.name_or_path={student}", "method.name=full", *overrides])
        if config.output.dir is None:
            config.output.dir = str(Path("runs") / f"distill-{Path(student).name}")
    if data:
        config.data.train = list(data)
    if out:
        config.output.dir = out
    return config


def run_distill(teacher: str, student: str, data: list[str], *, out: str | None = None, alpha: float = 0.5,
                temperature: float = 2.0, overrides: list[str] = (), overwrite: bool = False, callbacks=(),
                events=None):
    """Train the student; `callbacks` and `events` go to train() (a progress bar, a printer)."""
    from tunesmith.inference.load import load_for_inference
    from tunesmith.models import load_tokenizer, resolve_model
    from tunesmith.training.runner import train

    if not 0 <= alpha <= 1 or temperature <= 0:
        raise ConfigError(f"distill: --alpha must be in [0, 1] (got {alpha}) and --temperature > 0 (got {temperature})")
    config = student_config(student, data, out, list(overrides))
    config.output.overwrite = config.output.overwrite or overwrite
    teacher_loaded = load_for_inference(teacher)
    if not student.endswith((".yaml", ".yml")) and teacher_loaded.config.data.template != "auto":
        config.data.template = teacher_loaded.config.data.template  # prompt as the teacher was tuned
    student_tok = load_tokenizer(resolve_model(config.model.name_or_path), config.model.trust_remote_code)
    check_shared_vocabulary(teacher_loaded.tokenizer, student_tok, teacher, config.model.name_or_path)
    model = teacher_loaded.model
    model = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    trainer_class = functools.partial(DistillTrainer, teacher=model, alpha=alpha, temperature=temperature)
    result = train(config, trainer_class=trainer_class, callbacks=callbacks, events=events)
    write_json(Path(result.run_dir) / "distill.json", {
        "teacher": teacher, "student": config.model.name_or_path, "alpha": alpha, "temperature": temperature,
        "loss": "alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE",
        "eval_loss_before": result.eval_before.get("eval_loss"), "eval_loss_after": result.eval_after.get("eval_loss"),
    })
    return result
