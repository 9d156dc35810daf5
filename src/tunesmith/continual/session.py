"""What a continued (or multi-task) run adds to training, for training/runner.py.

- the start: model.from_run's adapter keeps training (the same method; its saved options, such
  as r, stay), or a run's full weights are the starting model; O-LoRA starts its own way;
- the earlier tasks' eval sets (every run of the chain), measured with each evaluation as
  eval_old_<run>_loss, so results.json has them before and after training;
- the regulariser's penalty, anchored at the starting weights;
- forgetting: backward transfer (change of the earlier tasks' eval loss) and forward gain.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.continual.regularisers import REGULARISERS, AnchorContext
from tunesmith.errors import ConfigError
from tunesmith.methods import METHODS
from tunesmith.runs.lineage import ancestors, earlier_config, earlier_run
from tunesmith.runs.rundir import RunDir


@dataclass
class Continual:
    earlier: RunDir | None = None
    earlier_config: object = None
    regulariser: object = None  # a Regulariser entry, or None
    old_evals: dict[str, list[dict]] = field(default_factory=dict)  # eval name -> features

    @property
    def active(self) -> bool:
        return self.earlier is not None


def plan_continual(config, method) -> Continual:
    """Check model.from_run and the regulariser, and point the config's base model at the run's:
    the earlier run's own base model for an adapter run, its saved model/ for a full-weights run
    (so that this run's adapter, if it trains one, loads on the weights it was trained on)."""
    reg_cfg = config.train.regulariser
    if not config.model.from_run:
        if reg_cfg is not None:
            raise ConfigError(f"train.regulariser: {reg_cfg.name} keeps what an earlier run knew; "
                              "set model.from_run to that run (or drop train.regulariser)")
        return Continual()
    earlier = earlier_run(config.model.from_run)
    old = earlier_config(config.model.from_run)
    regulariser = REGULARISERS.get(reg_cfg.name) if reg_cfg else None
    new_adapter = regulariser is not None and regulariser.new_adapter
    if earlier.adapter_dir.is_dir() and not new_adapter:
        _check_adapter_start(config, method, old)
    full_weights = earlier.model_dir.is_dir() and not earlier.adapter_dir.is_dir()
    config.model.name_or_path = str(earlier.model_dir.resolve()) if full_weights else old.model.name_or_path
    return Continual(earlier, old, regulariser)


def _check_adapter_start(config, method, old) -> None:
    """An adapter run continues as the same adapter method, or merged into the start of a method
    that trains the weights themselves (full, freeze ...)."""
    if not method.saves_adapter:
        if not METHODS.get(old.method.name).mergeable:
            raise ConfigError(f"method.name: {method.name} starts from model.from_run's weights, but the "
                              f"{old.method.name} adapter of {config.model.from_run} cannot be merged into "
                              f"them; continue with method {old.method.name}")
        return
    if old.method.name != method.name:
        raise ConfigError(f"method.name: {method.name} differs from {old.method.name}, the method of "
                          f"model.from_run {config.model.from_run}, whose adapter keeps training; use method "
                          f"{old.method.name} (or train.regulariser o-lora for a new adapter beside it, or a "
                          "method that trains the weights, such as full, to start from the merged adapter)")


def start_model(plan: Continual, model, config, method):
    """The model training starts from, with exactly the parameters to train set requires_grad."""
    if plan.regulariser is not None:
        started = plan.regulariser.start(model, plan.earlier, config, method)
        if started is not None:
            return started
    if plan.active and plan.earlier.adapter_dir.is_dir():
        if not method.saves_adapter:  # full, freeze ...: the earlier adapter merged in is the start
            old = METHODS.get(plan.earlier_config.method.name)
            return method.apply(old.load_adapter(model, str(plan.earlier.adapter_dir)).merge_and_unload(),
                                config.method)
        if not method.peft:
            raise ConfigError(f"model.from_run: continuing a {method.name} adapter is not supported; "
                              "continue a PEFT method's run (lora, dora, ia3 ...)")
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(plan.earlier.adapter_dir), is_trainable=True)
    return method.apply(model, config.method)


def chain(plan: Continual) -> list[str]:
    """Every earlier run of the chain that is still where it was, oldest first; model.from_run last."""
    found = [a["run"] for a in ancestors(plan.earlier.path) if RunDir.is_run(a["run"])]
    return [*found, str(plan.earlier.path)]


def eval_name(path: str) -> str:
    return "old_" + re.sub(r"[^0-9A-Za-z]+", "_", Path(path).name).strip("_")


def earlier_evals(plan: Continual, task, tokenizer, config) -> dict[str, list[dict]]:
    """The eval sets of every earlier task, tokenized as this run tokenizes."""
    from tunesmith.data.cache import build_features_cached
    from tunesmith.data.prepare import split_records

    found = {}
    for path in chain(plan):
        records = split_records(earlier_config(path, "model.from_run (lineage)"), task).eval
        if records:
            found[eval_name(path)] = build_features_cached(task, records, tokenizer, config)[0]
    return found


def anchor(plan: Continual, model, run_dir: Path, task, tokenizer, config):
    """The regulariser's penalty(model), anchored at the weights training starts from (None: no regulariser)."""
    if plan.regulariser is None:
        return None

    def old_features(rows: int) -> list[dict]:
        from tunesmith.data.cache import build_features_cached
        from tunesmith.data.prepare import split_records

        records = split_records(plan.earlier_config, task).train
        records = random.Random(config.train.seed).sample(records, min(rows, len(records)))
        return build_features_cached(task, records, tokenizer, config)[0]

    context = AnchorContext(run_dir, plan.earlier, old_features)
    return plan.regulariser.anchor(model, config.train.regulariser, context)


def forgetting(before: dict, after: dict, old_names: list[str]) -> dict:
    """Backward transfer and forward gain from the evaluations before and after training.

    backward_transfer: mean over earlier tasks of (eval loss before - after): negative when the
    run forgot (the old loss rose), the sign of the usual accuracy-based figure. forward_gain:
    the new task's eval loss before - after. Relative figures are shares of the loss before."""
    tasks = {}
    for name in old_names:
        b, a = before.get(f"eval_{name}_loss"), after.get(f"eval_{name}_loss")
        if b is not None and a is not None:
            tasks[name.removeprefix("old_")] = {"before": b, "after": a, "change": a - b, "relative": (a - b) / b}
    result = {"earlier_tasks": tasks}
    if tasks:
        result["backward_transfer"] = -sum(t["change"] for t in tasks.values()) / len(tasks)
        result["backward_transfer_relative"] = -sum(t["relative"] for t in tasks.values()) / len(tasks)
    b, a = before.get("eval_loss"), after.get("eval_loss")
    if b is not None and a is not None:
        result["forward_gain"] = b - a
        result["forward_gain_relative"] = (b - a) / b
    return result
