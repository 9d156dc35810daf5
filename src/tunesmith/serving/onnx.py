"""ONNX exports (`tunesmith export --to onnx`) served through onnxruntime: chat and completions for
causal LMs, /v1/predict for classification runs, /v1/embeddings for plain encoders.

A causal LM's exported graph maps (input_ids, attention_mask) to the logits of the whole sequence and has
no past-key-value inputs, so each new token re-runs the prompt and the reply so far. That cannot
join a batch over a KV cache, so an ONNX model answers one request at a time, in a scheduler of
its own (the same queue, sampling, stop rules, streaming and cancellation as every other model).
Graphs with other inputs (a KV cache) are refused with a 400.

An encoder export (serving/onnx.py `OnnxEncoder`) is called like a transformers model, so the
classification task's own predict (label map, probabilities, bad rows) and the server's mean
pooling run on it unchanged, as they do on the PyTorch run.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tunesmith.serving.engine import Slot
from tunesmith.serving.errors import BadRequest

ONNX_FILE = "model.onnx"
INPUTS = {"input_ids", "attention_mask"}


class OnnxCausalLM:
    """The graph of an ONNX export and the model config saved beside it."""

    def __init__(self, folder: Path):
        from transformers import AutoConfig

        from tunesmith.export.onnx import OnnxRuntime

        self.runtime = OnnxRuntime(folder / ONNX_FILE)
        names = {i.name for i in self.runtime.session.get_inputs()}
        outputs = {o.name for o in self.runtime.session.get_outputs()}
        if names != INPUTS or "logits" not in outputs:
            raise BadRequest(f"{folder.name}: the ONNX graph takes {', '.join(sorted(names))}; tunesmith serves "
                             "graphs of (input_ids, attention_mask) -> logits, as `tunesmith export --to onnx` "
                             "writes them", "model")
        self.config = AutoConfig.from_pretrained(folder)

    def next_logits(self, ids: list[int]):
        """The logits of the token after `ids` ([vocabulary], float32)."""
        import torch

        batch = torch.tensor([ids])
        return self.runtime.logits(batch, torch.ones_like(batch))[0, -1].float()


def load_onnx(path: str):
    """A Loaded for the export folder: its graph, its tokenizer (with the run's chat template baked
    in by the export) and default settings."""
    from tunesmith.config.load import validate_config
    from tunesmith.data.templates import get_template
    from tunesmith.inference.load import Loaded
    from tunesmith.models import load_tokenizer

    folder = Path(path)
    tokenizer = load_tokenizer(folder)
    config = validate_config({"model": {"name_or_path": str(folder)}})
    return Loaded(OnnxCausalLM(folder), tokenizer, get_template(config.data.template, tokenizer), config)


class OnnxSlot(Slot):
    """A Slot whose model is an ONNX graph: one request at a time, each step over the whole sequence."""

    def _admit(self, batch, live):
        if live:
            return batch, live
        with self.wake:
            job = self.waiting.popleft() if self.waiting else None
        if job is None or self._dropped(job):
            return None, []
        self.joining = [job]  # failed with the step if it fails
        live = self._advance([job])
        self.joining = []
        return None, live

    def _decode(self, batch, live):
        return None, self._advance(live)

    def _advance(self, live):
        job = live[0]
        logits = self.loaded.model.next_logits(job.prompt + job.generated)
        token = self._choose(logits[None], [job])[0]
        return live if self._emit(job, token, self._logprobs(logits, job, token)) else []


class OnnxEncoder:
    """An encoder export called like a transformers model: keyword tensors in; out, `logits`
    (classification) or `last_hidden_state` and `hidden_states` (encoders)."""

    def __init__(self, folder: Path):
        from transformers import AutoConfig

        from tunesmith.export.onnx import OnnxEncoderRuntime

        self.runtime = OnnxEncoderRuntime(folder / ONNX_FILE)
        self.config = AutoConfig.from_pretrained(folder)

    def __call__(self, output_hidden_states: bool = False, **batch):
        out = self.runtime.outputs(batch)
        if self.runtime.output == "logits":
            return SimpleNamespace(logits=out)
        return SimpleNamespace(last_hidden_state=out, hidden_states=(out,))

    def parameters(self):
        """No torch weights: one empty CPU tensor, where the batching helpers look for the device."""
        import torch

        return iter([torch.zeros(0)])


def run_config(folder: Path) -> dict | None:
    """The run config a classification export keeps beside its graph (None for other exports)."""
    import json

    from tunesmith.export.onnx import RUN_CONFIG

    path = folder / RUN_CONFIG
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_onnx_encoder(path: str):
    """A Loaded for a classification or encoder export: its graph, tokenizer and the run's config."""
    from tunesmith.config.load import validate_config
    from tunesmith.export.onnx import ENCODER_INPUTS
    from tunesmith.inference.load import Loaded
    from tunesmith.models import load_tokenizer

    folder = Path(path)
    config = run_config(folder) or {}
    model = OnnxEncoder(folder)
    output = "logits" if config else "last_hidden_state"  # what export --to onnx writes for each
    if model.runtime.output != output or not set(model.runtime.inputs) <= set(ENCODER_INPUTS):
        raise BadRequest(f"{folder.name}: the ONNX graph maps {', '.join(model.runtime.inputs)} to "
                         f"{model.runtime.output}; tunesmith serves encoder graphs to {output} as "
                         "`tunesmith export --to onnx` writes them", "model")
    config["model"] = {**config.get("model", {}), "name_or_path": str(folder)}
    return Loaded(model, load_tokenizer(folder), None, validate_config(config, str(folder)))
