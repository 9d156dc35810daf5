"""Where a training step's time goes, per module type, from torch.profiler.

SmolLM2-135M's architecture (random weights unless --model names a folder: the cost is the same),
LoRA r=16 on q/v, AdamW, the training path of `tunesmith train` for a causal-LM batch: the
examples of a step packed by `BatchPackingCollator`, head + loss by `labelled_logits_loss`
(labelled positions only, chunked), fp32 (or --bf16 autocast). Each variant (the masked packed
rows of before issue 20, and attention per packed sequence) runs a warm-up step and --steps
profiled steps; every op's own CPU time is charged to the innermost module type around it
(forward hooks open `record_function` ranges; a backward op is charged where its forward op was,
through the autograd sequence number). Printed as a table of ms per step and shares, with the
load average: on a shared machine the shares are what to compare, absolute times vary.

    python benchmarks/profile_step.py [--steps 2] [--layers 30] [--bf16] [--variants masked,packed]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tunesmith.data.packing import BatchPackingCollator  # noqa: E402
from tunesmith.models.packed_attention import use_packed_attention  # noqa: E402
from tunesmith.training.loss import labelled_logits_loss  # noqa: E402
from tunesmith.training.speed import attention_span  # noqa: E402

PREFIX = "cat::"
ORDER = ["data", "embeddings", "attention projections", "attention (SDPA, RoPE)", "MLP", "norms", "LoRA",
         "layer glue (residuals)", "head + loss", "optimizer", "other"]


def category(name: str, module) -> str | None:
    """The module type a module's own work is charged to (None: its parent's)."""
    kind = type(module).__name__
    if "lora_A" in name or "lora_B" in name or "lora_dropout" in name:
        return "LoRA" if not isinstance(module, torch.nn.ModuleDict) else None
    if name.endswith("embed_tokens"):
        return "embeddings"
    if "Norm" in kind:
        return "norms"
    if name.endswith("rotary_emb") or name.endswith("self_attn"):
        return "attention (SDPA, RoPE)"
    if ".self_attn." in name and isinstance(module, torch.nn.Linear):
        return "attention projections"
    if name.endswith(".mlp"):
        return "MLP"
    if kind.endswith("DecoderLayer"):
        return "layer glue (residuals)"
    return None


def add_ranges(model) -> None:
    """Open a profiler range named after each module's category for its forward."""
    for name, module in model.named_modules():
        cat = category(name, module)
        if cat is None:
            continue
        def pre(mod, args, cat=cat):
            mod._range = torch.autograd.profiler.record_function(PREFIX + cat)
            mod._range.__enter__()

        def post(mod, args, out):
            mod._range.__exit__(None, None, None)

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)


def charge(events) -> dict[str, float]:
    """Own CPU time (ms) per category: the innermost range around a forward op; for a backward
    op, the category of the forward op with the same autograd sequence number."""
    def innermost(e):
        while e is not None:
            if e.name.startswith(PREFIX):
                return e.name[len(PREFIX):]
            if e.name.startswith("autograd::engine::evaluate_function"):
                return ("bwd", e.sequence_nr)
            e = e.cpu_parent
        return "other"

    by_seq: dict[int, str] = {}
    for e in events:
        if e.sequence_nr >= 0 and not e.name.startswith("autograd::"):
            cat = innermost(e)
            if isinstance(cat, str):
                by_seq.setdefault(e.sequence_nr, cat)
    totals: dict[str, float] = defaultdict(float)
    for e in events:
        cat = innermost(e)
        if isinstance(cat, tuple):
            cat = by_seq.get(cat[1], "head + loss")  # nodes without a recorded forward op: the loss's
        totals[cat] += e.self_cpu_time_total / 1e3
    return totals


def build(model_dir: str | None, layers: int):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if model_dir:
        model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa")
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from packed_rows import SMOLLM2

        model = LlamaForCausalLM(LlamaConfig(**{**SMOLLM2, "num_hidden_layers": layers}, attn_implementation="sdpa"))
    model.config.use_cache = False
    return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"]))


class _Tok:
    pad_token_id = 2
    eos_token_id = 2


def features(n: int, seed: int) -> list[dict]:
    """Alpaca-like examples: ~200 tokens, the first third prompt (no label)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(80, 330)
        ids = [rng.randrange(3, 49152) for _ in range(length)]
        prompt = length // 3
        out.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return out


def run(model, optimizer, collator, feats, bf16: bool) -> None:
    with torch.autograd.profiler.record_function(PREFIX + "data"):
        batch = collator(feats)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.autograd.profiler.record_function(PREFIX + "head + loss"), autocast:
        loss = labelled_logits_loss(model, batch)
    loss.backward()
    with torch.autograd.profiler.record_function(PREFIX + "optimizer"):
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def profile(model, variant: str, steps: int, bf16: bool) -> tuple[dict[str, float], float]:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    base = model.get_base_model()
    base.config._attn_implementation = "sdpa"
    if variant == "packed":
        assert use_packed_attention(model)
    span = attention_span(model) if variant == "masked" else float("inf")
    collator = BatchPackingCollator(_Tok(), attention_span=span)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    run(model, optimizer, collator, features(8, 0), bf16)  # warm-up
    t = time.perf_counter()
    for s in range(steps):
        run(model, optimizer, collator, features(8, s + 1), bf16)
    plain = (time.perf_counter() - t) / steps
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for s in range(steps):
            run(model, optimizer, collator, features(8, s + 1), bf16)
    totals = charge(prof.events())
    return {k: v / steps for k, v in totals.items()}, plain


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--model", default=None, help="a model folder (default: SmolLM2-135M's shape, random weights)")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--variants", default="masked,packed")
    a = p.parse_args()
    model = build(a.model, a.layers)
    add_ranges(model)
    results = {}
    for variant in a.variants.split(","):
        results[variant] = profile(model, variant, a.steps, a.bf16)
    print(f"\nSmolLM2-135M shape, {a.layers} layers, LoRA r16 q/v, 8 examples per step, "
          f"{'bf16 autocast' if a.bf16 else 'fp32'}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}; ms of CPU per step (share)")
    names = list(results)
    print("| module type | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for cat in ORDER:
        cells = []
        for n in names:
            totals = results[n][0]
            cells.append(f"{totals.get(cat, 0):,.0f} ({totals.get(cat, 0) / sum(totals.values()):.0%})")
        print(f"| {cat} | " + " | ".join(cells) + " |")
    print("| total (profiled, CPU) | " + " | ".join(f"{sum(results[n][0].values()):,.0f}" for n in names) + " |")
    print("| step wall time, unprofiled | " + " | ".join(f"{results[n][1] * 1e3:,.0f}" for n in names) + " |")


if __name__ == "__main__":
    main()
