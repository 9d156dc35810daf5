"""The run configuration: one pydantic tree whose field descriptions are its documentation."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, SerializeAsAny, WithJsonSchema, field_validator

from tunesmith.config.components import (
    METHOD_CONFIGS,
    REGULARISER_CONFIGS,
    TASK_CONFIGS,
    MethodConfig,
    RegulariserConfig,
    TaskConfig,
    parse_component,
)
from tunesmith.config.migrations import CONFIG_VERSION
from tunesmith.config.pipeline import StepOptions, parse_steps


def _auto_or_positive(kind: type):
    """A number > 0 or the word auto (resolved from the data by training/auto.py)."""

    wanted = f"must be {'a whole number' if kind is int else 'a number'} > 0 or 'auto'"

    def check(value):
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(wanted)
        try:
            number = kind(value)
        except (ValueError, OverflowError):  # int("x"), int(float("inf"))
            raise ValueError(wanted) from None
        if not math.isfinite(number) or number <= 0 or (kind is int and number != float(value)):
            raise ValueError(wanted)
        return number

    schema = {"anyOf": [{"type": "number" if kind is float else "integer", "exclusiveMinimum": 0},
                        {"const": "auto"}]}
    return Annotated[kind | Literal["auto"], PlainValidator(check), WithJsonSchema(schema)]


PositiveFloatOrAuto = _auto_or_positive(float)
PositiveIntOrAuto = _auto_or_positive(int)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ModelSection(Section):
    name_or_path: str = Field(
        "smollm2-135m-instruct",
        description="A zoo name (`tunesmith models list`), a local Hugging Face directory, "
        "a .gguf file, or a hub id (needs a network).",
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the model dir.")
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = Field(
        "auto", description="Attention kernel; auto: transformers' choice (SDPA). flash_attention_2 needs "
        "CUDA and the flash-attn package (varlen over packed rows)."
    )
    from_run: str | None = Field(
        None, description="Continue from this run directory (docs/continual.md): its adapter keeps "
        "training (an adapter method must match the run's; full, freeze ... start from it merged) or its "
        "full weights are the start and the base (name_or_path: its model/); the chain of runs is recorded "
        "in lineage.json.",
    )


class ReplaySection(Section):
    from_: list[str] = Field(
        alias="from", description="Earlier run directories (their training rows as recorded) or data files.",
    )
    ratio: float = Field(0.05, gt=0.0, lt=1.0, description="Share of the training mix made of replayed rows.")
    strategy: Literal["uniform", "per_task"] = Field(
        "uniform", description="uniform: draw from all earlier rows pooled; per_task: the same number from each source."
    )
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    @field_validator("from_", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v


class TaskData(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", description="Task name: letters, digits, _ and - "
                      "(per-task eval figures are reported under it, as eval_<name>_loss).")
    train: list[str] = Field(description="Training files of this task.")
    eval: list[str] = Field(default_factory=list, description="Eval files (default: data.eval_ratio of train).")
    weight: float = Field(1.0, gt=0, description="Loss weight: scales the task's share of sampled rows "
                          "(its expected share of the gradient).")

    @field_validator("train", "eval", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v


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
    pipeline: list[SerializeAsAny[StepOptions]] = Field(
        default_factory=list,
        description="Data steps applied in order to the rows as written (before format "
        "conversion), e.g. [{step: clean}, {step: dedup, threshold: 0.8}]; each step's rows in/out "
        "go to data_report.json (`tunesmith data steps`).",
    )
    columns: list[str] | None = Field(
        None, description="Column names for csv/tsv files without a header row (the first line is then data)."
    )
    stratify_by: str | None = Field(
        None, description="With eval_ratio: hold out that share of each value of this field (e.g. the label), "
        "so the eval split keeps the class balance."
    )
    replay: ReplaySection | None = Field(
        None, description="Mix rows of earlier runs or files into the training data: {from, ratio, strategy}.",
    )
    tasks: list[TaskData] = Field(
        default_factory=list, description="Multi-task training: [{name, train, eval, weight}] instead of data.train.",
    )
    sampling: Literal["size", "equal", "temperature"] = Field(
        "size", description="Multi-task mix: rows in proportion to task size, equal shares, or p ~ n^(1/T).",
    )
    temperature: float = Field(2.0, gt=0, description="T of sampling: temperature (1 = by size, large = equal).")
    cache: bool = Field(
        True, description="Reuse tokenized data from an earlier run with the same data, tokenizer, "
        "template, cutoff and task ($TUNESMITH_HOME/cache/tokenized)."
    )

    @field_validator("train", "eval", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v

    @field_validator("pipeline", mode="before")
    @classmethod
    def _pipeline(cls, v):
        return parse_steps(v)

    @field_validator("tasks")
    @classmethod
    def _unique_names(cls, v):
        names = [t.name for t in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"task name {', '.join(twice)} is given twice; each task needs its own name")
        return v


class DistributedSection(Section):
    """Several processes training one run (docs/distributed.md); `tunesmith train --nproc` sets it too."""

    nproc: int = Field(1, gt=0, description="Processes on this machine (one per GPU; on CPUs, gloo).")
    nnodes: int = Field(1, gt=0, description="Machines taking part; each runs the same command.")
    node_rank: int = Field(0, ge=0, description="This machine's number, 0 .. nnodes-1 (0 hosts the rendezvous).")
    rdzv: str | None = Field(
        None, description="HOST:PORT of node 0's rendezvous (needed with nnodes > 1; default: a free local port)."
    )
    max_restarts: int = Field(
        0, ge=0, description="Restart the whole group this many times when a process dies; it resumes "
        "from the last checkpoint."
    )
    strategy: Literal["ddp", "fsdp", "deepspeed"] = Field(
        "ddp", description="ddp: a full copy per process; fsdp: FSDP2 shards weights, gradients and "
        "optimizer state; deepspeed: ZeRO (needs CUDA and the deepspeed package)."
    )
    zero_stage: Literal[2, 3] = Field(2, description="deepspeed: ZeRO stage (3 also shards the weights).")
    offload: bool = Field(False, description="deepspeed: keep optimizer state (and ZeRO-3 weights) in CPU memory.")

    @field_validator("rdzv")
    @classmethod
    def _host_port(cls, v):
        if v is not None:
            host, _, port = v.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("must be HOST:PORT, e.g. 10.0.0.1:29500")
        return v

    @property
    def world_size(self) -> int:
        return self.nproc * self.nnodes

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or self.strategy != "ddp" or self.max_restarts > 0


class TrainSection(Section):
    epochs: PositiveFloatOrAuto = Field(
        3.0, description="Passes over the training data; auto: from the row count (docs/sweeps.md)."
    )
    max_steps: int = Field(-1, ge=-1, description="Stop after this many optimizer steps (-1: use epochs).")
    batch_size: PositiveIntOrAuto = Field(
        4, description="Rows per device per step; auto: about 0.2% of the rows, capped (docs/sweeps.md)."
    )
    grad_accum: int = Field(1, gt=0, description="Micro-batches accumulated per optimizer step.")
    learning_rate: PositiveFloatOrAuto = Field(
        2e-4, description="Peak learning rate; auto: from the method and batch size (docs/sweeps.md)."
    )
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
    seed: int = Field(42, ge=0, lt=2**32, description="Seed for data order, dropout and initialisation.")
    logging_steps: int = Field(5, gt=0, description="Log train loss every N steps.")
    save_steps: int = Field(50, gt=0, description="Checkpoint every N steps.")
    save_total_limit: int = Field(2, gt=0, description="Keep at most N checkpoints.")
    threads: int | None = Field(None, gt=0, description="CPU threads for torch (default: all cores).")
    report_to: list[Literal["none", "tensorboard", "mlflow"]] = Field(
        default_factory=lambda: ["none"],
        description="Experiment trackers: none, tensorboard (RUN/tensorboard), mlflow, or a list.",
    )
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI (default: a local file store, mlruns/ beside the run)."
    )
    experiment: str | None = Field(
        None, description="MLflow experiment name (default: the name of the folder holding the run)."
    )
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
        False, description="Compile each transformer layer with torch.compile, dynamic shapes: the first step "
        "takes ~45 s longer on 2 CPU cores, later steps are faster and use less memory (pays after ~40 steps)."
    )
    distributed: DistributedSection = Field(
        default_factory=DistributedSection, description="Processes, machines and sharding strategy."
    )
    regulariser: SerializeAsAny[RegulariserConfig] | None = Field(
        None, description="Continual learning: a penalty keeping what model.from_run knew: ewc, l2-sp, o-lora "
        "(`docs/continual.md`).",
    )

    @field_validator("regulariser", mode="before")
    @classmethod
    def _regulariser(cls, v):
        return None if v is None else parse_component(REGULARISER_CONFIGS, v, "l2-sp")

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_or_many_trackers(cls, v):
        return [v] if isinstance(v, str) else v


class EvalSection(Section):
    steps: int | None = Field(
        None, gt=0, description="Evaluate every N steps (default: at the end of each epoch)."
    )
    batch_size: int = Field(8, gt=0, description="Rows per evaluation batch.")
    before_training: bool = Field(True, description="Measure eval loss of the untuned model first.")
    early_stopping_patience: int | None = Field(
        None, gt=0, description="Stop after N evaluations without eval-loss improvement."
    )
    metrics: list[str] = Field(
        default_factory=list,
        description="Metrics computed at every evaluation on a sample of the eval split, generating "
        "replies when they need them (`tunesmith metrics list`), e.g. [rouge, bleu].",
    )
    metric_rows: int = Field(32, gt=0, description="Eval rows sampled (fixed, seeded) for eval.metrics.")
    max_new_tokens: int = Field(128, gt=0, description="Longest reply generated for eval.metrics.")
    metric_options: dict[str, dict] = Field(
        default_factory=dict, description="Options per metric, e.g. {regex: {pattern: '^[A-D]$'}}."
    )
    best_metric: str | None = Field(
        None,
        description="Score that drives early stopping and best-checkpoint choice, e.g. rougeL, bleu, "
        "eval_loss (default eval_loss).",
    )
    greater_is_better: bool | None = Field(
        None, description="Direction of best_metric (default: that metric's own direction)."
    )
    load_best_at_end: bool = Field(
        False,
        description="Finish with the best checkpoint's weights by best_metric (checkpoints are then "
        "saved at every evaluation).",
    )

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_list(cls, v):
        return [m.strip() for m in v.split(",") if m.strip()] if isinstance(v, str) else v


class OutputSection(Section):
    dir: str | None = Field(None, description="Run directory (default: runs/<config file stem>).")
    overwrite: bool = Field(False, description="Replace an existing run directory.")


class RunConfig(Section):
    """Everything one fine-tuning run needs; `tunesmith config schema` prints it."""

    config_version: int = Field(
        CONFIG_VERSION, ge=1, description="Schema version of this config; a run's saved config.yaml "
        "written by an older tunesmith is migrated to today's keys when read (config/migrations.py).",
    )
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
