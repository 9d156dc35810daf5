"""One small interface over every runtime an export can be run in, so measuring is shared.

A runtime gives logits for a padded batch and greedy continuations of a fixed length (the
end-of-turn token is not allowed to stop it early, so every format decodes the same amount).
"""

from __future__ import annotations

from types import SimpleNamespace


class TorchRuntime:
    """A PyTorch model (plain, PEFT, int8-quantized, pruned or GGUF-dequantized)."""

    name = "pytorch"

    def __init__(self, model, pad_token_id: int | None):
        self.model = model.eval()
        self.pad_token_id = pad_token_id

    def logits(self, input_ids, attention_mask):
        import torch

        with torch.no_grad():
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits.float()

    def greedy(self, ids: list[int], max_new_tokens: int) -> list[int]:
        import torch

        input_ids = torch.tensor([ids])
        with torch.no_grad():
            out = self.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False,
                temperature=None, top_p=None, top_k=None, pad_token_id=self.pad_token_id,
            )
        return out[0, len(ids):].tolist()


class LogitsAsModel:
    """Lets evaluation code that calls `model(input_ids=, attention_mask=).logits` use a runtime."""

    def __init__(self, runtime):
        self.runtime = runtime

    def __call__(self, input_ids, attention_mask):
        return SimpleNamespace(logits=self.runtime.logits(input_ids, attention_mask))


class TorchEncoderRuntime:
    """A PyTorch encoder or classifier: one named output (`logits` or `last_hidden_state`) of a batch."""

    name = "pytorch"

    def __init__(self, model, output: str):
        self.model, self.output = model.eval(), output

    def outputs(self, batch: dict):
        import torch

        with torch.no_grad():
            return getattr(self.model(**batch), self.output).float()
