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
