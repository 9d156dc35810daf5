"""This machine's matmul peak at a model's own shapes, for benchmarks/sft_throughput.py.

Usage: python _peak.py MODEL_DIR TOKENS  -> one JSON line on stdout:
{"params": N, "shapes": [[m, k, n], ...], "bf16": {"peak_gflops": .., "by_shape": {...}}, "fp32": {...}}

Every linear layer shape of the model (q/k/v/o, gate/up/down, the LM head) with TOKENS rows
(the tokens of one training step): the best of several timed runs per shape, and the peak is
the fastest shape. Run in its own process with the legs' thread settings.
"""

from __future__ import annotations

import json
import sys
import time

import torch


def model_shapes(model_dir: str) -> tuple[int, list[tuple[int, int]]]:
    """Parameter count and the distinct (in, out) shapes of the model's linear layers."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    shapes = sorted({(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)})
    return params, shapes


def gflops(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 1.0) -> float:
    """Best GFLOP/s of (m x k) @ (k x n) over `seconds`. Where one product would take longer than
    that (bf16 without native support runs at a few GFLOP/s), fewer rows are timed instead."""
    probe = min(m, 16)
    a, b = torch.randn(probe, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    t = time.perf_counter()
    a @ b
    predicted = (time.perf_counter() - t) * m / probe
    if predicted > seconds / 2:
        m = max(probe, int(m * seconds / 4 / predicted))
    a = torch.randn(m, k, dtype=dtype)
    a @ b  # warm-up
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * m * k * n / best / 1e9


def main() -> None:
    model_dir, tokens = sys.argv[1], int(sys.argv[2])
    params, shapes = model_shapes(model_dir)
    out = {"params": params, "tokens": tokens, "threads": torch.get_num_threads(),
           "shapes": [[tokens, k, n] for k, n in shapes]}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        by_shape = {f"{tokens}x{k}x{n}": round(gflops(tokens, k, n, dtype), 1) for k, n in shapes}
        out[name] = {"peak_gflops": max(by_shape.values()), "by_shape": by_shape}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
