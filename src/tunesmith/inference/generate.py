"""Chat generation with the run's template: batched (left padding, KV cache) or streamed, safe for
concurrent callers on one loaded model.

Nothing shared is changed per call: padding is asked for per call (the tokenizer's padding_side
stays as it is), the adapter of each row is routed per caller (inference.routing), sampling uses
a generator of its own (inference.sampling), and progress is reported through `on_progress`.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator

from tunesmith.data.templates import render_prompt
from tunesmith.inference.load import Loaded
from tunesmith.inference.routing import generator_of, routed
from tunesmith.inference.sampling import SamplingParams, generate_kwargs
from tunesmith.inference.stops import cut, visible_pieces

__all__ = ["SamplingParams", "ask", "generate_replies", "stop_token_ids", "stream_reply"]

# The fast tokenizer's Rust core keeps padding settings that each encode call may reset; encode
# calls take turns so one caller's reset never lands inside another's encode.
_ENCODE = threading.Lock()


def stop_token_ids(loaded: Loaded) -> list[int]:
    tok = loaded.tokenizer
    ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
    stop = loaded.template.stop_text(tok)
    stop_ids = _encode_ids(tok, [stop])[0] if stop else []
    if len(stop_ids) == 1:
        ids.add(stop_ids[0])
    return sorted(ids)


def generate_replies(
    loaded: Loaded,
    conversations: list[list[dict]],
    max_new_tokens: int = 128,
    batch_size: int = 8,
    temperature: float = 0.0,
    *,
    params: SamplingParams | None = None,
    adapter_names: list[str | None] | None = None,
    tools: list[str | list | None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> list[str]:
    """The assistant's reply to each conversation (greedy unless temperature > 0). `params`, when
    given, replaces max_new_tokens and temperature. `adapter_names` names the adapter for each
    conversation (None or "base": the base model); one batch may mix adapters. `tools` gives each
    conversation's tools (a row's `tools`: JSON text or a list; None: no tools), rendered as
    training rendered them; data.tool_calls.parse_tool_calls reads calls in the replies.
    `on_progress(n)` is called after each batch with the number of replies it finished."""
    params = params or SamplingParams(max_new_tokens, temperature)
    for name, given in (("adapter names", adapter_names), ("tool lists", tools)):
        if given is not None and len(given) != len(conversations):
            raise ValueError(f"{len(given)} {name} for {len(conversations)} conversations")
    prompts = [_prompt(loaded, c, tools[i] if tools else None) for i, c in enumerate(conversations)]
    replies: list[str] = []
    for start in range(0, len(prompts), batch_size):
        rows = slice(start, start + batch_size)
        replies += _generate(loaded, prompts[rows], params, adapter_names[rows] if adapter_names else None)
        if on_progress:
            on_progress(len(prompts[rows]))
    return replies


def stream_reply(loaded: Loaded, conversation: list[dict], params: SamplingParams | None = None, *,
                 adapter_name: str | None = None, tools: str | list | None = None,
                 cancel: threading.Event | None = None) -> Iterator[str]:
    """The reply to one conversation as text pieces while its tokens are generated; the pieces
    join to generate_replies' reply. `adapter_name` picks one adapter of an adapter set ("base":
    none); None runs the model as loaded. Ends at a stop string, end of turn, max_new_tokens, a
    set `cancel`, or when the caller stops reading (closing the iterator stops the generation)."""
    from transformers import TextIteratorStreamer

    params = params or SamplingParams()
    streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
    finished, failure = threading.Event(), []
    adapters = None if adapter_name is None else [adapter_name]

    def run():
        try:
            _generate(loaded, [_prompt(loaded, conversation, tools)], params, adapters, streamer, finished, cancel)
        except BaseException as err:  # handed to the reader below
            failure.append(err)
            streamer.end()

    # generation runs in a thread of its own (that is how transformers streams); it takes the
    # caller's context along, so an adapter chosen with AdapterSet.using applies there too
    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)
    thread.start()
    try:
        yield from visible_pieces(streamer, _stops(loaded, params))
    finally:
        finished.set()
        thread.join()
    if failure:
        raise failure[0]


def ask(loaded: Loaded, question: str, **kwargs) -> str:
    return generate_replies(loaded, [[{"role": "user", "content": question}]], **kwargs)[0]


def _prompt(loaded: Loaded, conversation: list[dict], tools: str | list | None = None) -> str:
    return render_prompt(loaded.template, loaded.tokenizer, conversation, loaded.config.data.system, tools)


def _generate(loaded: Loaded, prompts: list[str], params: SamplingParams, adapters: list[str | None] | None,
              streamer=None, *cancel: threading.Event | None) -> list[str]:
    import torch

    tok = loaded.tokenizer
    batch = tok.pad({"input_ids": _encode_ids(tok, prompts)}, padding=True, padding_side="left",
                    return_tensors="pt")
    stops, stop_ids = _stops(loaded, params), stop_token_ids(loaded)
    by_text = [s for s in stops if _encode_ids(tok, [s])[0] not in [[i] for i in stop_ids]]
    kwargs = generate_kwargs(params, tok, stop_ids, by_text, *cancel)
    model = loaded.model
    with torch.no_grad(), routed(model, adapters), generator_of(model) as generator:
        out = generator.generate(**batch.to(model.device), **kwargs, streamer=streamer)
    return [cut(tok.decode(row, skip_special_tokens=True), stops) for row in out[:, batch["input_ids"].shape[1]:]]


def _stops(loaded: Loaded, params: SamplingParams) -> tuple[str, ...]:
    return tuple(s for s in (*params.stop, loaded.template.stop_text(loaded.tokenizer)) if s)


def _encode_ids(tok, texts: list[str]) -> list[list[int]]:
    with _ENCODE:
        return tok(texts, add_special_tokens=False)["input_ids"]
