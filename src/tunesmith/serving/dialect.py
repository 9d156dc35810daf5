"""How one served model talks: its run's chat template, system prompt, stop tokens and context."""

from __future__ import annotations

from dataclasses import dataclass

from tunesmith.data.templates import render_prompt
from tunesmith.inference.load import Loaded
from tunesmith.serving.errors import BadRequest


@dataclass
class Dialect:
    tokenizer: object
    template: object
    system: str | None
    stop_ids: frozenset[int]
    stop_text: str
    context: int  # longest prompt + completion in tokens

    @classmethod
    def of(cls, loaded: Loaded, context: int) -> Dialect:
        from tunesmith.inference.generate import stop_token_ids

        return cls(loaded.tokenizer, loaded.template, loaded.config.data.system,
                   frozenset(stop_token_ids(loaded)), loaded.template.stop_text(loaded.tokenizer), context)

    def chat_prompt(self, messages: list[dict], tools: list[dict] | None = None, reply_start: str = "") -> list[int]:
        """Token ids of the conversation in the run's template, ready for the assistant's reply,
        rendered by the function training and `tunesmith generate` use (tools included), then
        `reply_start`: the opening the reply is forced to begin with (tool_choice)."""
        if not messages:
            raise BadRequest("messages must hold at least one message", "messages")
        try:
            text = render_prompt(self.template, self.tokenizer, messages, self.system, tools)
        except (KeyError, TypeError, ValueError) as err:  # a role or shape the template cannot render
            raise BadRequest(f"the model's chat template cannot render these messages: {err}", "messages") from None
        return self.encode(text) + (self.encode(reply_start) if reply_start else [])  # as training encodes turns

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count(self, text: str) -> int:
        return len(self.encode(text))

