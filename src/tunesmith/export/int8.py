"""int8: torch dynamic quantization of the Linear layers, for CPU inference.

Weights are int8 per output channel; activations are quantized on the fly at each call, so
no calibration data is needed. The folder loads with `tunesmith chat/generate/eval` (the
loader rebuilds the quantized modules; see tunesmith.models.int8).
"""

from __future__ import annotations

import time
from pathlib import Path

from tunesmith.export import ExportResult, register_exporter
from tunesmith.export.merged import weight_files


@register_exporter("int8", "Dynamic int8 quantization of Linear layers (torch) for CPU inference; "
                   "loadable by tunesmith.")
def export_int8(source, out_dir: Path, options) -> ExportResult:
    from tunesmith.export.runtime import TorchRuntime
    from tunesmith.models.int8 import quantize_int8, save_int8
    from tunesmith.models.load import load_model

    merged = source.merged_model()
    quantized = quantize_int8(merged)
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
                        details={"quantized_linear_layers": len(_names(quantized)),
                                 "engine": _engine()})


def _names(model) -> list[str]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return [n for n, m in model.named_modules() if isinstance(m, DynamicLinear)]


def _engine() -> str:
    import torch

    return torch.backends.quantized.engine


def _check_reload(in_memory, reloaded, source) -> None:
    """The saved int8 model must reproduce the quantized model exactly (same kernels, same ints)."""
    import torch

    from tunesmith.export import ExportError

    ids = torch.tensor([source.prompt_ids()[0]])
    mask = torch.ones_like(ids)
    if not torch.equal(in_memory.logits(ids, mask), reloaded.logits(ids, mask)):
        raise ExportError("int8 export failed its check: the reloaded model's logits differ from the "
                          "quantized model's; nothing was written")
