"""ONNX exports (`tunesmith export --to onnx`) served through onnxruntime: chat and completions.

The exported graph maps (input_ids, attention_mask) to the logits of the whole sequence and has
no past-key-value inputs, so each new token re-runs the prompt and the reply so far. That cannot
join a batch over a KV cache, so an ONNX model answers one request at a time, in a scheduler of
its own (the same queue, sampling, stop rules, streaming and cancellation as every other model).
Graphs with other inputs (a KV cache, token types) are refused with a 400.
"""

from __future__ import annotations

from pathlib import Path

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
