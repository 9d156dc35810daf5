"""tunesmith run inside the test process: the CLI through tunesmith.cli.main.run (no interpreter
start-up per command), and an ASGI app served by uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def exit_code(*args) -> int:
    """Run `tunesmith ARGS`; its exit code. What it printed stays in pytest's capture."""
    from tunesmith.cli.main import run

    try:
        run([str(a) for a in args])
    except SystemExit as exit_info:  # any other exception is a traceback: it fails the test
        return exit_info.code or 0
    return 0


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run `tunesmith ARGS`: (exit code, stdout, stderr) of this command alone, never a traceback."""
    capsys.readouterr()
    code = exit_code(*args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def fails_in_one_line(capsys, *args, fragments: tuple[str, ...] = ()) -> str:
    """Run `tunesmith ARGS`, which must exit 2 with one `error:` line holding every fragment."""
    code, out, err = cli(capsys, *args)
    text = out + err
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@contextmanager
def serving(app) -> Iterator[str]:
    """The base URL of `app` on 127.0.0.1 at a free port, answering /health; stopped on exit."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.02)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        while httpx.get(f"{url}/health").status_code != 200:
            assert time.monotonic() < deadline, "server did not answer /health"
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


def stream_together(url: str, requests: list[tuple[str, list[dict]]], max_tokens: int = 8) -> list[str]:
    """Every (model, messages) request streamed at once, greedy, through the official async client;
    the replies in request order."""
    import openai

    async def stream(aclient, model, messages):
        parts = []
        async for chunk in await aclient.chat.completions.create(model=model, messages=messages,
                                                                 max_tokens=max_tokens, temperature=0, stream=True):
            parts.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
        return "".join(parts)

    async def together():
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as aclient:
            return await asyncio.gather(*(stream(aclient, m, msgs) for m, msgs in requests))

    return asyncio.run(together())
