"""Activation memory kept for backward: full fine-tuning against LoRA (issue 20, item 3).

SmolLM2-135M's layer shape (random weights), one packed row of --tokens tokens through --layers
decoder layers in training mode; every tensor autograd saves for backward is counted once (by
storage), which is the activation memory a step holds at its peak (weights included where
autograd saves them). Deterministic: it does not depend on machine load.

    python benchmarks/lora_memory.py [--layers 2] [--tokens 1600]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def saved_mb(model, ids) -> float:
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        base.model(input_ids=ids)
    return sum(storages.values()) / 2**20


def main() -> None:
    from packed_rows import SMOLLM2
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--tokens", type=int, default=1600)
    a = p.parse_args()
    ids = torch.randint(3, 49152, (1, a.tokens))
    variants = {"full fine-tuning": None,
                "LoRA q,v, dropout 0": LoraConfig(r=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0),
                "LoRA all 7 linears, dropout 0": LoraConfig(r=16, target_modules=ALL, lora_dropout=0.0),
                "LoRA all 7 linears, dropout 0.05": LoraConfig(r=16, target_modules=ALL, lora_dropout=0.05)}
    print(f"| variant | saved for backward, {a.layers} layers x {a.tokens} tokens (MB) |\n|---|---|")
    for name, lora in variants.items():
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**{**SMOLLM2, "num_hidden_layers": a.layers}, attn_implementation="sdpa"))
        model = get_peft_model(model, lora) if lora else model
        print(f"| {name} | {saved_mb(model.train(), ids):,.1f} |", flush=True)


if __name__ == "__main__":
    main()
