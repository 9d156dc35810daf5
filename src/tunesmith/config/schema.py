"""The run configuration: one pydantic tree whose field descriptions are its documentation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator

from tunesmith.config.components import (
    METHOD_CONFIGS,
    TASK_CONFIGS,
    MethodConfig,
    TaskConfig,
    parse_component,
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(Section):
    name_or_path: str = Field(
        "smollm2-135m-instruct",
        description="A zoo name (`tunesmith models list`), a local Hugging Face directory, "
        "a .gguf file, or a hub id (needs a network).",
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the model dir.")


class DataSection(Section):
    train: list[str] = Field(
        default_factory=list,
        description="Training files (json, jsonl, csv, tsv, parquet); several are concatenated.",
    )
    eval: list[str] = Field(default_factory=list, description="Evaluation files, if any.")
    eval_ratio: float = Field(
        0.0, ge=0.0, lt=1.0, description="Hold out this share of train rows for eval "
        "when no eval files are given."
    )
    format: str = Field(
        "auto", description="Row format: auto, alpaca, sharegpt, openai, text (`tunesmith formats`)."
    )
    template: str = Field(
        "auto",
        description="Chat template: auto (the tokenizer's own, else chatml), chatml, llama3, alpaca.",
    )
    system: str | None = Field(None, description="System prompt for rows that have none.")
    cutoff_len: int = Field(1024, gt=0, description="Longest tokenized row; longer rows are truncated.")
    train_on_prompt: bool = Field(False, description="Also compute loss on system/user tokens.")
    on_bad_row: Literal["error", "skip"] = Field(
        "error", description="A malformed row stops the run (error) or is dropped and reported (skip)."
    )
    max_rows: int | None = Field(None, gt=0, description="Use only the first N training rows.")
    cache: bool = Field(
        True, description="Reuse tokenized data from an earlier run with the same data, tokenizer, "
        "template, cutoff and task ($TUNESMITH_HOME/cache/tokenized)."
    )

    @field_validator("train", "eval", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v


class TrainSection(Section):
    epochs: float = Field(3.0, gt=0, description="Passes over the training data.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: use epochs).")
    batch_size: int = Field(4, gt=0, description="Rows per device per step.")
    grad_accum: int = Field(1, gt=0, description="Micro-batches accumulated per optimizer step.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay.")
    optimizer: Literal["adamw", "sgd", "adafactor"] = Field("adamw", description="Optimizer.")
    scheduler: Literal["linear", "cosine", "constant"] = Field(
        "cosine", description="Learning-rate schedule after warmup."
    )
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of steps spent warming up.")
    warmup_steps: int = Field(0, ge=0, description="Warmup steps (overrides warmup_ratio when > 0).")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm (0: off).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="auto: bf16 autocast where the CPU/GPU supports it, else fp32. "
        "Master weights stay fp32.",
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")
    seed: int = Field(42, description="Seed for data order, dropout and initialisation.")
    logging_steps: int = Field(5, gt=0, description="Log train loss every N steps.")
    save_steps: int = Field(50, gt=0, description="Checkpoint every N steps.")
    save_total_limit: int = Field(2, gt=0, description="Keep at most N checkpoints.")
    threads: int | None = Field(None, gt=0, description="CPU threads for torch (default: all cores).")
    packing: bool = Field(
        True, description="Causal-LM tasks: put several examples in one row, isolated by position_ids, "
        "so no compute is spent on padding. Without pack_length each batch of batch_size examples "
        "becomes one row (same examples per step as unpacked)."
    )
    pack_length: int | None = Field(
        None, gt=0, description="With packing: fill rows of this many tokens (best-fit decreasing); "
        "batch_size then counts packed rows. Must be >= data.cutoff_len."
    )
    group_by_length: bool = Field(
        True, description="Without packing: batch examples of similar length to cut padding."
    )
    labelled_logits_only: bool = Field(
        True, description="Compute the LM head and loss only where labels are not masked "
        "(same loss, less work); falls back to the full head for models it cannot handle."
    )
    torch_compile: bool = Field(
        False, description="Compile the model with torch.compile (slow start; can win on long runs)."
    )


class EvalSection(Section):
    steps: int | None = Field(
        None, gt=0, description="Evaluate every N steps (default: at the end of each epoch)."
    )
    batch_size: int = Field(8, gt=0, description="Rows per evaluation batch.")
    before_training: bool = Field(True, description="Measure eval loss of the untuned model first.")
    early_stopping_patience: int | None = Field(
        None, gt=0, description="Stop after N evaluations without eval-loss improvement."
    )


class OutputSection(Section):
    dir: str | None = Field(None, description="Run directory (default: runs/<config file stem>).")
    overwrite: bool = Field(False, description="Replace an existing run directory.")


class RunConfig(Section):
    """Everything one fine-tuning run needs; `tunesmith config schema` prints it."""

    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    method: SerializeAsAny[MethodConfig] = Field(
        default_factory=lambda: parse_component(METHOD_CONFIGS, {}, "lora"),
        description="Fine-tuning method and its options (`tunesmith methods list`).",
    )
    task: SerializeAsAny[TaskConfig] = Field(
        default_factory=lambda: parse_component(TASK_CONFIGS, {}, "sft"),
        description="What the model learns to do (`tunesmith tasks list`).",
    )
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    output: OutputSection = Field(default_factory=OutputSection)

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, v):
        return parse_component(METHOD_CONFIGS, v, "lora")

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, v):
        return parse_component(TASK_CONFIGS, v, "sft")
