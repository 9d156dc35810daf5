"""onnx: the merged model as an ONNX graph (torch.onnx.export), checked with onnxruntime.

A causal LM's graph maps (input_ids, attention_mask) to logits for the whole sequence, with
dynamic batch and length. It has no past-key-value inputs, so decoding recomputes the prefix each
step; the tokens/s in the report are for that plain loop. (optimum's exporter adds a KV cache, but
it pins transformers versions older than ours, so it is not used.)

A classification run's graph maps the tokenizer's inputs (input_ids, attention_mask and, where
the tokenizer makes them, token_type_ids) to `logits` [batch, labels]; a plain encoder's to
`last_hidden_state` (mean pooled by the server for embeddings). The run's config goes beside the
graph as run_config.json (label map, text columns, cutoff), so the export predicts as the run does.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import Field

from tunesmith.export import ExportOptions, ExportResult, register_exporter

ONNX_FILE = "model.onnx"
RUN_CONFIG = "run_config.json"  # a classification export's run config: its label map and text columns
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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
            feed = {"input_ids": np.array([seq], dtype=np.int64),
                    "attention_mask": np.ones((1, len(seq)), dtype=np.int64)}
            seq.append(int(self.session.run(["logits"], feed)[0][0, -1].argmax()))
        return seq[len(ids):]


class OnnxEncoderRuntime:
    """An encoder graph: the tokenizer's tensors in, its one output (logits or last_hidden_state) out."""

    name = "onnxruntime"

    def __init__(self, path: Path):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = self.session.get_outputs()[0].name

    def outputs(self, batch: dict):
        import torch

        ids = batch["input_ids"]
        feed = {name: (batch[name] if name in batch else torch.zeros_like(ids)).numpy() for name in self.inputs}
        return torch.from_numpy(self.session.run([self.output], feed)[0])


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


def _encoder_module(model, names: list[str], output: str):
    import torch

    class OneOutput(torch.nn.Module):
        """Named tensors in (positionally, for the exporter), one plain tensor out."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *tensors):
            return getattr(self.inner(**dict(zip(names, tensors))), output)

    return OneOutput(model).eval()


@register_exporter("onnx", "ONNX graph (torch.onnx.export) of the merged model: causal LMs (logits), "
                   "classification runs (logits, label map kept) and plain encoders (last_hidden_state); "
                   "checked with onnxruntime: outputs (and greedy text) equal to PyTorch.",
                   options=OnnxOptions, kinds=("classification", "encoder"))
def export_onnx(source, out_dir: Path, options: OnnxOptions) -> ExportResult:
    import torch

    if source.kind != "causal":
        return _export_encoder(source, out_dir, options)
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


def _export_encoder(source, out_dir: Path, options: OnnxOptions) -> ExportResult:
    """Classification runs and plain encoders. torch's TorchScript exporter (dynamo=False) traces
    them: an encoder has no cache and no length-dependent branch, and tracing takes a second where
    the dynamo exporter takes 10-15 s on a 2-layer BERT. A shape the trace fixed by mistake would
    fail the parity check, which runs on prompts of other lengths and batch sizes than the example."""
    import torch

    from tunesmith.export.source import OUTPUTS
    from tunesmith.utils.io import write_json

    model, output = source.merged_model(), OUTPUTS[source.kind]
    example = source.prompt_batch()
    names = [n for n in ENCODER_INPUTS if n in example]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output] = {0: "batch"} if output == "logits" else {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(_encoder_module(model, names, output), tuple(example[n] for n in names),
                          str(out_dir / ONNX_FILE), input_names=names, output_names=[output], dynamic_axes=axes,
                          opset_version=options.opset, dynamo=False, verbose=False)
    source.tokenizer.save_pretrained(out_dir)
    model.config.save_pretrained(out_dir)
    if source.kind == "classification":
        write_json(out_dir / RUN_CONFIG, source.config.model_dump(mode="json"))
    start = time.perf_counter()
    runtime = OnnxEncoderRuntime(out_dir / ONNX_FILE)
    seconds = time.perf_counter() - start
    files = sorted(p.name for p in out_dir.iterdir() if p.is_file())
    return ExportResult(runtime, seconds, files, details={"opset": options.opset, "output": output, "inputs": names},
                        logit_tolerance=1e-4)
