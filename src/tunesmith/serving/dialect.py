"""How one served model talks: its run's chat template, system prompt, stop tokens and context."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from tunesmith.inference.load import Loaded
from tunesmith.serving.errors import BadRequest
from tunesmith.tasks.sft import with_system


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

    def chat_prompt(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        """Token ids of the conversation in the run's template, ready for the assistant's reply.
        Tools are handed to the template the way the run saw them in training (a JSON list)."""
        if not messages:
            raise BadRequest("messages must hold at least one message", "messages")
        messages = with_system(messages, self.system)
        text = self._render(messages, json.dumps(tools, ensure_ascii=False) if tools else None)
        return self.encode(text)

    def _render(self, messages: list[dict], tools: str | None) -> str:
        try:
            if tools is None:
                return self.template.prompt(messages, self.tokenizer)
            if hasattr(self.template, "assistant_prefix"):  # a named template: turns, then the reply's prefix
                head = "".join(t for t, _ in self.template.segments(messages, self.tokenizer, tools))
                tok = self.tokenizer
                prefix = self.template.assistant_prefix.replace("{bos}", tok.bos_token or "")
                return head + prefix.replace("{eos}", tok.eos_token or "")
            plain = [{"role": m["role"], "content": m["content"]} for m in messages]  # the tokenizer's template
            return self.tokenizer.apply_chat_template(plain, tools=json.loads(tools), tokenize=False,
                                                      add_generation_prompt=True)
        except (KeyError, TypeError, ValueError) as err:  # a role or shape the template cannot render
            raise BadRequest(f"the model's chat template cannot render these messages: {err}", "messages") from None

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count(self, text: str) -> int:
        return len(self.encode(text))


def tool_calls(text: str) -> list[dict] | None:
    """A reply that is a JSON list (or object) of tool calls, as tunesmith trains them (the
    OpenAI format's `tool_calls` written as the assistant's text), in OpenAI's response shape."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    calls = data if isinstance(data, list) else [data]
    out = []
    for call in calls:
        fn = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            return None
        args = fn.get("arguments", {})
        out.append({"id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                    "function": {"name": fn["name"],
                                 "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)}})
    return out or None
