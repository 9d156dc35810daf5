"""merged: adapters folded into the base weights; plain safetensors that any transformers loads."""

from __future__ import annotations

import time
from pathlib import Path

from tunesmith.export import ExportResult, register_exporter


def weight_files(folder: Path) -> list[str]:
    names = ("*.safetensors", "*.json", "*.txt", "*.model", "*.jinja")
    return sorted({p.name for pattern in names for p in folder.glob(pattern)})


@register_exporter("merged", "Adapter merged into the base: safetensors + tokenizer, loads with plain "
                   "transformers; logits equal the adapter model's (atol 1e-4).")
def export_merged(source, out_dir: Path, options) -> ExportResult:
    from transformers import AutoModelForCausalLM

    from tunesmith.export.runtime import TorchRuntime

    source.save_merged(out_dir)
    start = time.perf_counter()
    # Plain transformers on purpose: the promise is that no tunesmith or PEFT code is needed.
    model = AutoModelForCausalLM.from_pretrained(out_dir)
    seconds = time.perf_counter() - start
    return ExportResult(
        TorchRuntime(model, source.tokenizer.pad_token_id), seconds, weight_files(out_dir),
        details={"dtype": str(model.dtype).replace("torch.", "")},
        logit_tolerance=1e-4, greedy_must_match=True,
    )
