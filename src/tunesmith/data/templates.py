"""Chat templates: a conversation becomes text segments, each marked trainable or not.

Loss goes on assistant turns (content and the end-of-turn marker, so the tuned model
learns to stop); system, user and tool turns are context. Named templates are written
here; `auto` uses the tokenizer's own Jinja template, split into turns by rendering
growing prefixes of the conversation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tunesmith.errors import ConfigError, DataError

Segment = tuple[str, bool]  # (text, trainable)


@dataclass(frozen=True)
class NamedTemplate:
    name: str
    start: str  # text before the first turn ({bos} is the tokenizer's BOS token)
    system: str
    user: str
    tool: str
    assistant_prefix: str
    assistant_suffix: str  # {eos} is the tokenizer's EOS token

    def segments(self, messages: list[dict], tokenizer, tools: str | None = None) -> list[Segment]:
        fill = _fill(tokenizer)
        out: list[Segment] = [(fill(self.start), False)] if self.start else []
        messages = _with_tools(messages, tools)
        for m in messages:
            if m["role"] == "assistant":
                out.append((fill(self.assistant_prefix), False))
                out.append((m["content"] + fill(self.assistant_suffix), m.get("weight", 1) == 1))
            else:
                pattern = {"system": self.system, "user": self.user, "tool": self.tool}[m["role"]]
                out.append((fill(pattern).replace("{content}", m["content"]), False))
        return out

    def prompt(self, messages: list[dict], tokenizer, tools: str | None = None) -> str:
        """The text a model continues to answer the last user turn: the same segments training
        renders (tools included), then the assistant's prefix."""
        text = "".join(t for t, _ in self.segments(messages, tokenizer, tools))
        return text + _fill(tokenizer)(self.assistant_prefix)

    def stop_text(self, tokenizer) -> str:
        return _fill(tokenizer)(self.assistant_suffix).strip() or (tokenizer.eos_token or "")


class TokenizerTemplate:
    """The tokenizer's own chat template, split into turns by rendering growing prefixes."""

    name = "tokenizer"

    def __init__(self, tokenizer):
        self._tok = tokenizer

    def _render(self, messages, tools, generation_prompt=False) -> str:
        kwargs = {"tools": json.loads(tools)} if tools else {}
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        return self._tok.apply_chat_template(
            plain, tokenize=False, add_generation_prompt=generation_prompt, **kwargs
        )

    def segments(self, messages: list[dict], tokenizer=None, tools: str | None = None) -> list[Segment]:
        out: list[Segment] = []
        prev = ""
        for k, m in enumerate(messages):
            if m["role"] == "assistant":
                head = self._render(messages[:k], tools, generation_prompt=True)
                out.append((self._tail(prev, head), False))
                prev = head
            full = self._render(messages[: k + 1], tools)
            trainable = m["role"] == "assistant" and m.get("weight", 1) == 1
            out.append((self._tail(prev, full), trainable))
            prev = full
        return out

    def _tail(self, prefix: str, text: str) -> str:
        if not text.startswith(prefix):
            raise DataError(
                "the tokenizer's chat template does not render conversations prefix by prefix; "
                "set data.template to one of: " + ", ".join(NAMED_TEMPLATES)
            )
        return text[len(prefix):]

    def prompt(self, messages: list[dict], tokenizer=None, tools: str | None = None) -> str:
        return self._render(messages, tools, generation_prompt=True)

    def stop_text(self, tokenizer) -> str:
        return self._tok.eos_token or ""


def with_system(messages: list[dict], system: str | None) -> list[dict]:
    """The run's system prompt (data.system) first, unless the conversation brings its own."""
    if system and messages[0]["role"] != "system":
        return [{"role": "system", "content": system}, *messages]
    return messages


def tools_text(tools: str | list | None) -> str | None:
    """Tools as training saw them: the row's JSON list as text (data/formats/openai.py writes it
    with this function; a ShareGPT row's `tools` string is kept as written)."""
    if not tools:
        return None
    return tools if isinstance(tools, str) else json.dumps(tools, ensure_ascii=False)


def render_segments(template, tokenizer, messages: list[dict], system: str | None = None,
                    tools: str | list | None = None) -> list[Segment]:
    """A conversation as training renders it: system prompt, tools, turns."""
    return template.segments(with_system(messages, system), tokenizer, tools_text(tools))


def render_prompt(template, tokenizer, messages: list[dict], system: str | None = None,
                  tools: str | list | None = None) -> str:
    """The prompt a model continues to answer the conversation, for inference and serving alike:
    the text of render_segments up to the reply, then the assistant's header, so a run sees at
    inference exactly what it saw in training before its answer."""
    return template.prompt(with_system(messages, system), tokenizer, tools_text(tools))


def _fill(tokenizer):
    bos, eos = tokenizer.bos_token or "", tokenizer.eos_token or ""
    return lambda s: s.replace("{bos}", bos).replace("{eos}", eos)


def _with_tools(messages: list[dict], tools: str | None) -> list[dict]:
    if not tools:
        return messages
    note = f"You may call these tools:\n{tools}"
    if messages and messages[0]["role"] == "system":
        return [{**messages[0], "content": messages[0]["content"] + "\n\n" + note}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


NAMED_TEMPLATES = {
    "chatml": NamedTemplate(
        "chatml", "", "<|im_start|>system\n{content}<|im_end|>\n",
        "<|im_start|>user\n{content}<|im_end|>\n", "<|im_start|>tool\n{content}<|im_end|>\n",
        "<|im_start|>assistant\n", "<|im_end|>\n",
    ),
    "llama3": NamedTemplate(
        "llama3", "<|begin_of_text|>",
        "<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>",
        "<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>",
        "<|start_header_id|>ipython<|end_header_id|>\n\n{content}<|eot_id|>",
        "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>",
    ),
    "alpaca": NamedTemplate(
        "alpaca", "{bos}", "{content}\n\n", "### Instruction:\n{content}\n\n",
        "### Observation:\n{content}\n\n", "### Response:\n", "{eos}\n\n",
    ),
}


def get_template(name: str, tokenizer):
    """`auto` is the tokenizer's own template when it has one, else chatml."""
    if name == "auto":
        return TokenizerTemplate(tokenizer) if getattr(tokenizer, "chat_template", None) else NAMED_TEMPLATES["chatml"]
    if name == "tokenizer":
        return TokenizerTemplate(tokenizer)
    if name not in NAMED_TEMPLATES:
        raise ConfigError(
            f"data.template: unknown template {name!r}; use auto, tokenizer or one of "
            + ", ".join(NAMED_TEMPLATES)
        )
    return NAMED_TEMPLATES[name]
