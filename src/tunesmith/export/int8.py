"""int8: int8 weights per output channel in every Linear layer, for CPU inference.

`--int8-mode weight-only` (the default): activations stay fp32 (`--int8-activations bf16`:
bf16), so quality is the weights' rounding only. `--int8-mode dynamic`: torch dynamic
quantization, activations quantized to int8 on the fly at each call (no calibration data; costs
more quality). The folder loads with `tunesmith chat/generate/eval` (the loader rebuilds the
quantized modules; see tunesmith.models.int8).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from tunesmith.export import ExportOptions, ExportResult, register_exporter
from tunesmith.export.merged import weight_files


class Int8Options(ExportOptions):
    int8_mode: Literal["weight-only", "dynamic"] = Field(
        "weight-only", description="weight-only: int8 weights, fp32/bf16 activations (keeps quality); "
        "dynamic: activations quantized to int8 at each call too")
    int8_activations: Literal["fp32", "bf16"] = Field(
        "fp32", description="weight-only mode: the activations' dtype")


def _folder(options: Int8Options) -> str:
    if options.int8_mode == "dynamic":
        return "int8-dynamic"
    return "int8" if options.int8_activations == "fp32" else "int8-bf16"


@register_exporter("int8", "int8 weights per channel in Linear layers for CPU inference (weight-only by "
                   "default, or dynamic); loadable by tunesmith.", options=Int8Options, folder_name=_folder)
def export_int8(source, out_dir: Path, options: Int8Options) -> ExportResult:
    from tunesmith.export.runtime import TorchRuntime
    from tunesmith.models.int8 import quantize_int8, quantized_modules, save_int8
    from tunesmith.models.load import load_model

    merged = source.merged_model()
    quantized = quantize_int8(merged, options.int8_mode, options.int8_activations)
    merged.config.save_pretrained(out_dir)
    source.save_tokenizer(out_dir)
    files = save_int8(quantized, out_dir)
    start = time.perf_counter()
    loaded = load_model(out_dir)
    seconds = time.perf_counter() - start
    reloaded = TorchRuntime(loaded, source.tokenizer.pad_token_id)
    in_memory = TorchRuntime(quantized, source.tokenizer.pad_token_id)
    _check_reload(in_memory, reloaded, source)
    return ExportResult(reloaded, seconds, sorted(set(files) | set(weight_files(out_dir))),
                        details={"quantized_linear_layers": len(quantized_modules(quantized)),
                                 "mode": options.int8_mode,
                                 "activations": "int8 (dynamic)" if options.int8_mode == "dynamic"
                                 else options.int8_activations,
                                 "engine": _engine() if options.int8_mode == "dynamic"
                                 else _weight_only_engine(options.int8_activations)})


def _engine() -> str:
    import torch

    return torch.backends.quantized.engine


def _weight_only_engine(activations: str) -> str:
    return "torch._weight_int8pack_mm" if activations == "bf16" else "int8 weights dequantized per call, fp32 matmul"


def _check_reload(in_memory, reloaded, source) -> None:
    """The saved int8 model must reproduce the quantized model exactly (same kernels, same ints)."""
    import torch

    from tunesmith.export import ExportError

    ids = torch.tensor([source.prompt_ids()[0]])
    mask = torch.ones_like(ids)
    if not torch.equal(in_memory.logits(ids, mask), reloaded.logits(ids, mask)):
        raise ExportError("int8 export failed its check: the reloaded model's logits differ from the "
                          "quantized model's; nothing was written")
