"""What one training step's row split costs: the same 8 sequences as a padded batch, as packed rows
with transformers' block-diagonal mask, and as packed rows with attention per sequence.

SmolLM2-135M's architecture (random weights: the cost is the same), LoRA r=16 on q/v, forward +
backward of the transformer body (no LM head), the dtype of training on this CPU (fp32 unless
--bf16). Variants run interleaved in one process; medians of wall and CPU time with the load
average (on a shared machine only the ratios within one run mean something).

    python benchmarks/packed_rows.py [--rounds 3] [--tokens 1600 --sequences 8] [--bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch

from tunesmith.data.packing import PackedCollator, balanced_rows, cheapest_rows, concatenate
from tunesmith.models.packed_attention import NAME

SMOLLM2 = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
               num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=8192,
               rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=100000.0)


def smollm2_lora(layers: int):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**{**SMOLLM2, "num_hidden_layers": layers}, attn_implementation="sdpa", use_cache=False)
    model = LlamaForCausalLM(config)
    return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"]))


class _Tok:
    pad_token_id = 2
    eos_token_id = 2


def batches(lengths: list[int], span: float) -> dict[str, dict]:
    g = torch.Generator().manual_seed(0)
    feats = [{"input_ids": torch.randint(3, 49152, (n,), generator=g).tolist()} for n in lengths]
    for f in feats:
        f["labels"] = f["input_ids"]
    longest = max(lengths)
    padded = {"input_ids": torch.tensor([f["input_ids"] + [2] * (longest - len(f["input_ids"])) for f in feats]),
              "attention_mask": torch.tensor([[1] * n + [0] * (longest - n) for n in lengths])}

    def packed(rows):
        b = PackedCollator(_Tok())([concatenate([feats[i] for i in row]) for row in rows])
        return {k: v for k, v in b.items() if k != "labels"}

    return {"padded (8 rows)": (padded, "sdpa"),
            "1 row, masked": (packed([list(range(len(lengths)))]), "sdpa"),
            f"cheapest split (span {span:.0f}), masked": (packed(cheapest_rows(lengths, span)), "sdpa"),
            "1 row, per-sequence": (packed([list(range(len(lengths)))]), NAME),
            "2 rows, per-sequence": (packed(balanced_rows(lengths, 2)), NAME),
            "4 rows, per-sequence": (packed(balanced_rows(lengths, 4)), NAME)}


def body_step(model, inputs, implementation, bf16):
    model.base_model.model.config._attn_implementation = implementation
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with autocast:
        hidden = model.base_model.model.model(**inputs).last_hidden_state
    hidden.float().square().mean().backward()
    model.zero_grad(set_to_none=True)


def main() -> None:
    from packed_attention import lengths_for  # the sibling script (benchmarks/ is on sys.path)

    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tokens", type=int, default=1600)
    p.add_argument("--sequences", type=int, default=8)
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args()
    model = smollm2_lora(a.layers)
    from tunesmith.training.speed import attention_span

    span = attention_span(model)
    lengths = lengths_for(a.tokens, a.sequences)
    variants = batches(lengths, span)
    for inputs, impl in variants.values():
        body_step(model, inputs, impl, a.bf16)  # warm-up
    wall = {n: [] for n in variants}
    cpu = {n: [] for n in variants}
    for _ in range(a.rounds):
        for name, (inputs, impl) in variants.items():
            t, c = time.perf_counter(), time.process_time()
            body_step(model, inputs, impl, a.bf16)
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    base = statistics.median(cpu["padded (8 rows)"])
    print(f"{a.sequences} sequences {lengths} ({sum(lengths)} tokens), {a.layers} layers, "
          f"{'bf16 autocast' if a.bf16 else 'fp32'}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'variant':40} {'shape':>10} {'wall s':>8} {'CPU s':>8} {'CPU vs padded':>14}")
    for name, (inputs, _) in variants.items():
        shape = "x".join(map(str, inputs["input_ids"].shape))
        c = statistics.median(cpu[name])
        print(f"{name:40} {shape:>10} {statistics.median(wall[name]):8.2f} {c:8.2f} {base / c:13.2f}x")


if __name__ == "__main__":
    main()
