"""`train.torch_compile`: compile each transformer layer, not the whole model.

Measured on SmolLM2-135M LoRA, packed rows, 2-core CPU (docs/performance.md): compiling the whole
model made steady steps 37% slower. Packed rows change length every step, and per-sequence
attention reads the sequence lengths (`.tolist()`), so the whole-model graph broke and recompiled
around it. Compiling each decoder layer with dynamic shapes ("regional compilation") compiles a
few graphs per layer class, reused by every layer and every length: +12% steady steps and -17%
peak RSS in benchmarks/sft_throughput.py, since inductor fuses the element-wise ops and recomputes
them in backward instead of keeping their outputs. The first step pays ~45 s of compiling. `Module.compile` compiles in place, so parameter names, checkpoints and PEFT
adapters stay as they are.
"""

from __future__ import annotations

import shutil

from tunesmith.errors import ConfigError


def compiler_missing() -> str | None:
    """Why torch.compile cannot run on this machine (inductor builds C++ kernels on CPU), or None."""
    import torch

    if torch.cuda.is_available() or shutil.which("c++") or shutil.which("g++"):
        return None
    return "train.torch_compile needs a C++ compiler on CPU (apt install g++); or set train.torch_compile: false"


def compile_layers(model, backend: str = "inductor") -> int:
    """Compile every transformer layer of `model` in place (dynamic shapes); the number compiled.
    A model without transformers' layer class is compiled whole. Compilation itself happens at
    the first calls; tests pass `aot_eager` (the same graphs, forward and backward, run by torch
    instead of generated C++), which takes seconds where inductor takes minutes."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    reason = compiler_missing() if backend == "inductor" else None
    if reason:
        raise ConfigError(reason)
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for layer in layers or [model]:
        layer.compile(dynamic=True, backend=backend)
    return len(layers)
