"""AdaLoRA (Zhang et al. 2023): SVD-shaped LoRA whose rank budget moves to the layers that matter.

The budget schedule needs the total number of optimizer steps, which only the trainer knows,
so a callback fills it in at the start of training and calls PEFT's `update_and_allocate`
after every optimizer step (while gradients still exist, as PEFT requires).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.methods import Method, register_method
from tunesmith.methods.lora import head_exclusions, peft_task_type, wrap_with_peft


class AdaLoraConfig(MethodConfig):
    name: Literal["adalora"] = "adalora"
    init_r: int = Field(12, gt=0, description="Rank each layer starts with.")
    target_r: int = Field(8, gt=0, description="Average rank per layer once the budget is spent.")
    alpha: float = Field(8, gt=0, description="Scaling numerator (PEFT default 8).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] | str = Field(
        "all-linear", description="Module names to adapt or 'all-linear'.")
    warmup_share: float = Field(
        0.1, ge=0, lt=1, description="Share of steps trained at full rank before pruning (tinit).")
    final_share: float = Field(
        0.2, ge=0, lt=1, description="Share of final steps trained with the budget fixed (tfinal).")
    delta_t: int = Field(1, gt=0, description="Reallocate the budget every N steps (deltaT).")
    beta1: float = Field(0.85, gt=0, lt=1, description="EMA factor of the sensitivity.")
    beta2: float = Field(0.85, gt=0, lt=1, description="EMA factor of the uncertainty.")
    orth_reg_weight: float = Field(0.5, ge=0, description="Weight of the orthogonality penalty.")


def _budget_callbacks(model, cfg: AdaLoraConfig) -> list:
    from transformers import TrainerCallback

    class RankBudget(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            peft_config = model.peft_config[model.active_adapter]
            total = max(state.max_steps, 1)
            peft_config.total_step = total
            peft_config.tinit = int(cfg.warmup_share * total)
            peft_config.tfinal = min(int(cfg.final_share * total), total - peft_config.tinit - 1)

        def on_optimizer_step(self, args, state, control, **kwargs):
            model.base_model.update_and_allocate(state.global_step)

    return [RankBudget()]


@register_method
class AdaLora(Method):
    config_class = AdaLoraConfig
    summary = "LoRA whose rank budget is reallocated by importance (AdaLoRA)"
    mergeable, saves_adapter = True, True

    def apply(self, model, cfg: AdaLoraConfig):
        from peft import AdaLoraConfig as PeftAdaLoraConfig

        if cfg.target_r > cfg.init_r:
            from tunesmith.errors import ConfigError

            raise ConfigError(f"method.target_r ({cfg.target_r}) must be <= method.init_r ({cfg.init_r})")
        peft_config = PeftAdaLoraConfig(
            init_r=cfg.init_r, target_r=cfg.target_r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
            target_modules=cfg.target_modules, deltaT=cfg.delta_t, beta1=cfg.beta1, beta2=cfg.beta2,
            orth_reg_weight=cfg.orth_reg_weight, task_type=peft_task_type(model),
            exclude_modules=head_exclusions(model),
            total_step=1, tinit=0, tfinal=0,  # the real schedule is set when training starts
        )
        peft_model = wrap_with_peft(model, peft_config)
        peft_model.base_model.register_forward_pre_hook(_regularise_only_in_training(cfg))
        return peft_model

    def callbacks(self, model, cfg: AdaLoraConfig) -> list:
        return _budget_callbacks(model, cfg)


def _regularise_only_in_training(cfg: AdaLoraConfig):
    """PEFT adds the orthogonality penalty to every loss, eval included; an eval loss must be
    the task's loss alone to compare with other methods, so the penalty is off outside training."""

    def hook(adalora_model, args):
        for config in adalora_model.peft_config.values():
            config.orth_reg_weight = cfg.orth_reg_weight if adalora_model.training else 0.0

    return hook
