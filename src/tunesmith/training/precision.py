"""Mixed-precision policy: bf16 autocast where the hardware runs it natively, else fp32."""

from __future__ import annotations

from pathlib import Path


def cpu_supports_bf16() -> bool:
    """AVX512-BF16 or AMX: the CPU has native bf16 matmuls (Linux /proc/cpuinfo flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str) -> tuple[str, str]:
    """(precision, note) for `train.precision`; the note says why when auto chose."""
    import torch

    if requested != "auto":
        return requested, f"precision {requested} as configured"
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: GPU supports bf16"
        return "fp16", "auto: GPU without bf16, using fp16"
    if cpu_supports_bf16():
        return "bf16", "auto: CPU has native bf16 (avx512_bf16/amx), bf16 autocast"
    return "fp32", "auto: CPU lacks native bf16, training in fp32"


def store_frozen_linears_in_bf16(model) -> int:
    """Frozen linear layers kept in bf16 for bf16-autocast training of adapters.

    Autocast casts every fp32 weight to bf16 on each forward and keeps the copy for the backward
    pass; for frozen weights that copy is the only one the matmuls ever use, so storing them in
    bf16 gives the same arithmetic without the casts and with half their memory (plus no copies).
    Trainable parameters stay fp32 master weights; embeddings (and a head tied to them) and norms
    stay fp32, so the residual stream keeps its precision. Only for runs that save adapters: the
    base weights are never written back. Returns how many layers were converted."""
    import torch

    embeddings = {id(p) for p in model.get_input_embeddings().parameters()}
    converted = 0
    for module in model.modules():
        if (type(module) is torch.nn.Linear and not module.weight.requires_grad
                and id(module.weight) not in embeddings):
            module.to(torch.bfloat16)
            converted += 1
    return converted
