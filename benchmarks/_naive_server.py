"""Leg (a) of benchmarks/serve_load.py: the naive deployment, FastAPI around `model.generate`.

    python benchmarks/_naive_server.py MODEL_DIR --port 8101

What a tutorial's deployment section shows: one model, one lock, one request at a time
(`generate` is not safe to call concurrently on one model, so requests wait their turn),
tokens streamed from a TextIteratorStreamer. It speaks just enough of OpenAI's chat
completions API (streamed and not, with `usage`) for the official client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid

import torch
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer


class Chat(BaseModel):
    model: str
    messages: list[dict]
    max_tokens: int = 64
    temperature: float = 0.0
    stream: bool = False
    stream_options: dict | None = None


def create_app(model_dir: str) -> FastAPI:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    one_at_a_time = threading.Lock()
    app = FastAPI()

    def run(body: Chat, streamer: TextIteratorStreamer, ids) -> None:
        with one_at_a_time, torch.inference_mode():
            greedy = body.temperature <= 0
            sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": body.temperature}
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=body.max_tokens, streamer=streamer,
                           pad_token_id=tokenizer.eos_token_id, **sampling)

    def envelope(cid: str, body: Chat, choices: list, usage=None) -> str:
        out = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": body.model,
               "choices": choices}
        if usage is not None:
            out["usage"] = usage
        return f"data: {json.dumps(out)}\n\n"

    @app.post("/v1/chat/completions")
    async def chat(body: Chat):
        ids = tokenizer.apply_chat_template(body.messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)["input_ids"]
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        worker = threading.Thread(target=run, args=(body, streamer, ids), daemon=True)
        worker.start()
        cid = f"chatcmpl-{uuid.uuid4().hex}"

        async def pieces():
            while True:  # the streamer's queue blocks: read it off the event loop
                piece = await asyncio.to_thread(next, streamer, None)
                if piece is None:
                    return
                yield piece

        def usage(text: str) -> dict:
            completion = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            return {"prompt_tokens": ids.shape[1], "completion_tokens": completion,
                    "total_tokens": ids.shape[1] + completion}

        if not body.stream:
            text = "".join([p async for p in pieces()])
            return JSONResponse({"id": cid, "object": "chat.completion", "created": int(time.time()),
                                 "model": body.model, "usage": usage(text),
                                 "choices": [{"index": 0, "finish_reason": "length",
                                              "message": {"role": "assistant", "content": text}}]})

        async def events():
            text = ""
            async for piece in pieces():
                if piece:
                    text += piece
                    yield envelope(cid, body, [{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
            yield envelope(cid, body, [{"index": 0, "delta": {}, "finish_reason": "length"}])
            if body.stream_options and body.stream_options.get("include_usage"):
                yield envelope(cid, body, [], usage(text))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    uvicorn.run(create_app(args.model_dir), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
