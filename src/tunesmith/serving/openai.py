"""Requests in OpenAI's wire format (field names as in the `openai` package's
types/chat/completion_create_params.py and types/completion_create_params.py), validated by
pydantic; fields tunesmith does not use are accepted and ignored, as OpenAI-compatible servers do."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tunesmith.data.tool_calls import call_prefix
from tunesmith.serving.errors import BadRequest

MAX_N = 16
MAX_STOP = 4
TOOL_CHOICES = ("none", "auto", "required")


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ToolCallFunction(Lenient):
    name: str
    arguments: str = ""


class ToolCall(Lenient):
    id: str | None = None
    type: Literal["function"] = "function"
    function: ToolCallFunction


class Message(Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """Text parts joined; an assistant turn that called tools is those calls as JSON, the way
        tunesmith trains on them (data/formats/openai.py)."""
        if isinstance(self.content, list):
            parts = [p.get("text", "") for p in self.content if p.get("type") in ("text", "input_text")]
            if len(parts) < len(self.content):
                raise BadRequest("only text content parts are supported", "messages")
            return "".join(parts)
        if not self.content and self.tool_calls:
            import json

            return json.dumps([c.model_dump(exclude_none=True) for c in self.tool_calls], ensure_ascii=False)
        return self.content or ""

    def plain(self) -> dict:
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text()}


class StreamOptions(Lenient):
    include_usage: bool = False


class Sampled(Lenient):
    """Fields shared by chat and text completions."""

    model: str
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=MAX_N)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value):
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        return stops



class ChosenFunction(Lenient):
    name: str


class NamedToolChoice(Lenient):
    type: Literal["function"] = "function"
    function: ChosenFunction


class ChatRequest(Sampled):
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None  # "none" | "auto" | "required" | NamedToolChoice, checked below
    parallel_tool_calls: bool | None = True
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=20)

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, value):
        if value is None or value in TOOL_CHOICES:
            return value
        if isinstance(value, dict):
            try:
                return NamedToolChoice.model_validate(value)
            except ValueError:
                pass
        raise ValueError(f"must be one of {', '.join(TOOL_CHOICES)} or "
                         '{"type": "function", "function": {"name": ...}}')

    @property
    def limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def wanted_logprobs(self) -> int | None:
        if self.top_logprobs is not None and not self.logprobs:
            raise BadRequest("top_logprobs needs logprobs: true", "top_logprobs")
        return (self.top_logprobs or 0) if self.logprobs else None

    def tool_plan(self) -> tuple[list[dict] | None, str]:
        """(the tools to render in the prompt, the text the reply is forced to start with).
        "none" renders no tools (a plain text reply); "auto" (the default with tools) lets the
        model choose; "required" and a named function force a call by starting the reply with
        the call's opening as the run was trained to write it (data.tool_calls.call_prefix),
        rather than constraining tokens: the run's own training target, so no grammar engine."""
        choice = self.tool_choice or ("auto" if self.tools else "none")
        if choice == "none":
            return None, ""
        if not self.tools:
            raise BadRequest(f"tool_choice {_shown(choice)} needs tools", "tool_choice")
        if choice == "auto":
            return self.tools, ""
        if choice == "required":
            return self.tools, call_prefix()
        names = [(t.get("function") or t).get("name") for t in self.tools if isinstance(t, dict)]
        if choice.function.name not in names:
            raise BadRequest(f"tool_choice names function {choice.function.name!r}, which is not among tools "
                             f"({', '.join(map(str, names))})", "tool_choice")
        return self.tools, call_prefix(choice.function.name)


def _shown(choice) -> str:
    return repr(choice) if isinstance(choice, str) else f"function {choice.function.name!r}"


class CompletionRequest(Sampled):
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)
    echo: bool | None = False
    suffix: str | None = None
    logprobs: int | None = Field(None, ge=0, le=5)

    @property
    def wanted_logprobs(self) -> int | None:
        return self.logprobs

    @property
    def limit(self) -> int | None:
        return self.max_tokens

    def prompts(self) -> list[str]:
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        if not prompts:
            raise BadRequest("prompt must not be empty", "prompt")
        return prompts


class EmbeddingRequest(Lenient):
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] | None = "float"
    user: str | None = None

    def texts(self) -> list[str]:
        texts = [self.input] if isinstance(self.input, str) else self.input
        if not texts:
            raise BadRequest("input must not be empty", "input")
        return texts


class PredictRequest(Lenient):
    """tunesmith's own: rows in the run's columns, e.g. {"text": ...} or {"question", "context"}."""

    model: str
    input: dict[str, Any] | list[dict[str, Any]]
    user: str | None = None

    def rows(self) -> list[dict]:
        rows = [self.input] if isinstance(self.input, dict) else self.input
        if not rows:
            raise BadRequest("input must not be empty", "input")
        return rows


class AdapterRequest(Lenient):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@/-]*$")
    path: str


class FeedbackRequest(Lenient):
    completion_id: str
    score: float
