"""onnx: the merged causal LM as an ONNX graph (torch.onnx.export), checked with onnxruntime.

The graph maps (input_ids, attention_mask) to logits for the whole sequence, with dynamic batch
and length. It has no past-key-value inputs, so decoding recomputes the prefix each step; the
tokens/s in the report are for that plain loop. (optimum's exporter adds a KV cache, but it
pins transformers versions older than ours, so it is not used.)
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import Field

from tunesmith.export import ExportOptions, ExportResult, register_exporter

ONNX_FILE = "model.onnx"


class OnnxOptions(ExportOptions):
    opset: int = Field(18, ge=14, description="ONNX opset version.")


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, path: Path):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def logits(self, input_ids, attention_mask):
        import torch

        feed = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        return torch.from_numpy(self.session.run(["logits"], feed)[0])

    def greedy(self, ids: list[int], max_new_tokens: int) -> list[int]:
        import numpy as np

        seq = list(ids)
        for _ in range(max_new_tokens):
            feed = {"input_ids": np.array([seq], dtype=np.int64), "attention_mask": np.ones((1, len(seq)), dtype=np.int64)}
            seq.append(int(self.session.run(["logits"], feed)[0][0, -1].argmax()))
        return seq[len(ids):]


def _logits_module(model):
    import torch

    class LogitsOnly(torch.nn.Module):
        """Plain tensors in and out: no cache object, no ModelOutput, for a clean graph."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    return LogitsOnly(model).eval()


@register_exporter("onnx", "ONNX graph (torch.onnx.export) of the merged model; checked with onnxruntime: "
                   "max logit difference and greedy text equal to PyTorch.", options=OnnxOptions)
def export_onnx(source, out_dir: Path, options: OnnxOptions) -> ExportResult:
    import torch

    model = source.merged_model()
    example = torch.tensor([source.prompt_ids()[0]] * 2)
    mask = torch.ones_like(example)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dims = {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > 1_800_000_000  # protobuf's 2 GB cap
    with torch.no_grad():
        torch.onnx.export(_logits_module(model), (example, mask), str(out_dir / ONNX_FILE),
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_shapes=dims, opset_version=options.opset, dynamo=True,
                          external_data=big, verbose=False)
    source.save_tokenizer(out_dir)
    model.config.save_pretrained(out_dir)
    start = time.perf_counter()
    runtime = OnnxRuntime(out_dir / ONNX_FILE)
    seconds = time.perf_counter() - start
    files = sorted(p.name for p in out_dir.iterdir() if p.is_file())
    return ExportResult(runtime, seconds, files, details={"opset": options.opset, "kv_cache": False},
                        logit_tolerance=1e-3, greedy_must_match=True)
