"""One run on several processes: who may write, what the Trainer is told, what cannot run.

The engines are the field's: torch.distributed's elastic launcher starts the processes
(training/launch.py) and the transformers Trainer does DDP, FSDP2 and DeepSpeed through
accelerate. What is ours: the process of rank 0 is the run directory's only writer (the others
read it, through FollowerRun), the arguments the Trainer gets for a strategy, a stop (Ctrl-C,
cancel) that all processes agree on, and refusals, before anything starts, of what cannot run.
"""

from __future__ import annotations

import importlib.util
import os

from transformers import TrainerCallback

from tunesmith.errors import ConfigError
from tunesmith.runs.rundir import RunDir

# Methods whose trained parameters cannot be sharded by FSDP or ZeRO-3, and why.
UNSHARDABLE = {
    "prompt-tuning": "its virtual-token table lives outside the model's layers, which FSDP wraps",
    "p-tuning": "its prompt encoder lives outside the model's layers, which FSDP wraps",
    "prefix-tuning": "its prefix is fed to every layer as past key/values, not as a layer's own weight",
    "p-tuning-v2": "its prefix is fed to every layer as past key/values, not as a layer's own weight",
    "galore": "its optimizer projects whole weight matrices, which sharding splits",
    "adalora": "its rank budget reads whole LoRA matrices between steps, which sharding splits",
    "qlora": "4-bit weights shard only with a bitsandbytes quant storage type on CUDA",
    "bottleneck": "its adapters are saved from whole parameters, which sharding splits",
    "pissa": "its adapter is converted against the whole initial weights when saved",
    "olora": "its adapter is converted against the whole initial weights when saved",
}


def rank() -> int:
    """This process's global rank (0 when not launched by torch.distributed)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0


def refusal(config) -> str | None:
    """Why `config.train.distributed` cannot run here (None: it can); checked before launch."""
    d, method = config.train.distributed, config.method.name
    if d.node_rank >= d.nnodes:
        return f"train.distributed.node_rank: {d.node_rank} must be below nnodes ({d.nnodes})"
    if d.nnodes > 1 and not d.rdzv:
        return "train.distributed.rdzv: several machines need node 0's HOST:PORT (--rdzv 10.0.0.1:29500)"
    if d.strategy == "fsdp" or (d.strategy == "deepspeed" and d.zero_stage == 3):
        if method in UNSHARDABLE:
            return (f"method.name: {method} cannot be sharded by train.distributed.strategy {d.strategy}: "
                    f"{UNSHARDABLE[method]}; use strategy ddp"
                    + (" or zero_stage 2" if d.strategy == "deepspeed" else ""))
    if d.strategy == "deepspeed":
        return deepspeed_refusal()
    return None


def deepspeed_refusal() -> str | None:
    import torch

    if importlib.util.find_spec("deepspeed") is None:
        return ("train.distributed.strategy deepspeed needs the deepspeed package (pip install 'tunesmith[deepspeed]') "
                "and CUDA GPUs; use strategy ddp or fsdp here")
    if not torch.cuda.is_available():
        # DeepSpeed's CPU backend compiles its own C++ communication ops when a run starts (over 6
        # minutes on a 2-core machine, tried); tunesmith runs DeepSpeed on CUDA GPUs only
        return ("train.distributed.strategy deepspeed needs CUDA GPUs (tunesmith does not run DeepSpeed's "
                "CPU backend); use strategy ddp or fsdp here")
    return None


def check(config) -> None:
    reason = refusal(config)
    if reason:
        raise ConfigError(reason)


def strategy_arguments(config) -> dict:
    """TrainingArguments for `train.distributed` (none for a single process)."""
    import torch

    d = config.train.distributed
    # the loss is divided by the trained tokens of all processes, not each one's own (a process
    # with short rows would otherwise weigh its tokens more than one with long rows)
    arguments: dict = {"average_tokens_across_devices": True}
    if world_size() > 1:
        arguments["ddp_backend"] = "nccl" if torch.cuda.is_available() else "gloo"
    if d.strategy == "fsdp":
        # FSDP2: each decoder layer sharded on its own; checkpoints and the final save gather whole weights
        arguments["fsdp"] = True
        arguments["fsdp_config"] = {"fsdp_version": 2, "reshard_after_forward": True,
                                    "auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "state_dict_type": "FULL_STATE_DICT"}
    elif d.strategy == "deepspeed":
        arguments["deepspeed"] = deepspeed_config(d)
    return arguments


def deepspeed_config(d) -> dict:
    """A DeepSpeed config made from ours; "auto" values are filled by the Trainer from its own
    arguments (batch size, accumulation, clipping, learning rate, precision)."""
    zero: dict = {"stage": d.zero_stage, "overlap_comm": True, "contiguous_gradients": True}
    if d.offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if d.zero_stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if d.zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto", "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"},
        "zero_optimization": zero,
    }


def gathered_state_dict(trainer) -> dict | None:
    """The whole weights of a model sharded across processes (FSDP, DeepSpeed ZeRO-3), for rank 0
    to save; every process must call it (it gathers). None when each process holds them whole."""
    zero3 = trainer.is_deepspeed_enabled and trainer.args.hf_deepspeed_config.is_zero3()
    if not (trainer.is_fsdp_enabled or zero3):
        return None
    return trainer.accelerator.get_state_dict(trainer.model_wrapped if zero3 else trainer.model)


class FollowerRun(RunDir):
    """The run directory as seen by a process other than rank 0: read, never written."""

    def start(self, config: dict) -> None:
        pass

    def write_config(self, data: dict) -> None:
        pass

    def set_status(self, status: str, reason: str = "") -> None:
        pass

    def log_metrics(self, row: dict) -> None:
        pass

    def trim_metrics(self, last_step: int) -> None:
        pass

    def clear(self) -> None:
        pass

    def event(self, kind: str, message: str, **data) -> dict:
        return {"event": kind, "message": message, **data}


class SharedStop(TrainerCallback):
    """A stop asked of one process (Ctrl-C, SIGTERM, a cancel file seen a step earlier) stops all of
    them at the same step: each would otherwise wait forever for the others' next gradients."""

    def __init__(self, stops: list):
        self.stops = stops

    def on_step_end(self, args, state, control, **kw):
        import torch
        import torch.distributed as dist

        flags = torch.tensor([int(s.requested) for s in self.stops], dtype=torch.int32, device=args.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        for stop, flag in zip(self.stops, flags.tolist()):
            if flag and not stop.requested:
                stop.requested = True
        if any(flags.tolist()):
            control.should_save = control.should_log = control.should_training_stop = True
