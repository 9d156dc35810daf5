"""RunConfig -> transformers TrainingArguments."""

from __future__ import annotations

from transformers import TrainingArguments

from tunesmith.training.metric_callback import best_model_arguments

OPTIMIZERS = {"adamw": "adamw_torch", "sgd": "sgd", "adafactor": "adafactor"}


def training_arguments(config, checkpoint_dir, precision: str, has_eval: bool,
                       overrides: dict | None = None, args_class=TrainingArguments, **extra) -> TrainingArguments:
    """`overrides`: TrainingArguments a method sets itself (GaLore's optimizer); `args_class` may be
    a TrainingArguments subclass (TRL's DPOConfig, ...) with its `extra` fields."""
    import torch

    t, e = config.train, config.eval
    eval_strategy = ("steps" if e.steps else "epoch") if has_eval else "no"
    warmup = t.warmup_steps if t.warmup_steps > 0 else t.warmup_ratio
    # transformers' "constant" ignores warmup; its warmup variant is a separate name
    scheduler = "constant_with_warmup" if t.scheduler == "constant" and warmup else t.scheduler
    arguments = dict(
        output_dir=str(checkpoint_dir),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=e.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        optim=OPTIMIZERS[t.optimizer],
        lr_scheduler_type=scheduler,
        warmup_steps=warmup,
        max_grad_norm=t.max_grad_norm if t.max_grad_norm > 0 else 0.0,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=t.gradient_checkpointing,
        seed=t.seed,
        data_seed=t.seed,
        logging_steps=t.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=e.steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
    )
    return args_class(**{**arguments, **best_model_arguments(config, has_eval), **(overrides or {}), **extra})
