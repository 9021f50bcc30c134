"""A small fake OpenAI-compatible chat server, for the fault cases of the serving client only
(the real engine of the tests is ``transformers serve``): a plan decides, per request number
(0, 1, 2, ... in arrival order), how it answers.

Modes: ``ok`` (streamed tokens, finish reason, usage, ``[DONE]``), ``http-500``, ``http-429``,
``cut-clean`` (a few tokens, then the body ends without finish reason or usage), ``cut-drop``
(a few tokens, then the connection drops mid-body), ``no-usage`` (finish reason and ``[DONE]``
but no usage chunk), ``error-event`` (an error event in the stream). A ``Reply`` also sets the
token count and the delays before the first token and between tokens.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    mode: str = "ok"
    tokens: int = 4
    first_token_delay_s: float = 0.0
    token_interval_s: float = 0.0


Plan = Callable[[int], Reply]


@dataclass
class FakeServer:
    base: str
    plan: Plan
    models: list[str] = field(default_factory=lambda: ["fake/model"])
    owned_by: str = "fake"
    version: str | None = None
    received: list[dict[str, Any]] = field(default_factory=list)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "x",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class _Dropped(Exception):
    """Raised inside a streaming body: uvicorn closes the connection mid-body."""


def _app(server: FakeServer) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    counter = iter(range(1_000_000_000))

    async def models(_request: Request) -> Response:
        data = [{"id": m, "object": "model", "owned_by": server.owned_by} for m in server.models]
        return JSONResponse({"object": "list", "data": data})

    async def version(_request: Request) -> Response:
        if server.version is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return JSONResponse({"version": server.version})

    async def chat(request: Request) -> Response:
        body = await request.json()
        server.received.append(body)
        reply = server.plan(next(counter))
        if reply.mode.startswith("http-"):
            status = int(reply.mode.removeprefix("http-"))
            return JSONResponse({"error": {"message": f"fake {status}"}}, status_code=status)

        async def stream() -> AsyncIterator[bytes]:
            yield _chunk({"role": "assistant"})
            await asyncio.sleep(reply.first_token_delay_s)
            for i in range(reply.tokens):
                if i:
                    await asyncio.sleep(reply.token_interval_s)
                if reply.mode.startswith("cut-") and i == 2:
                    if reply.mode == "cut-drop":
                        raise _Dropped
                    return
                if reply.mode == "error-event" and i == 1:
                    yield b'data: {"error": {"message": "engine overloaded"}}\n\n'
                    return
                yield _chunk({"content": f"t{i} "})
            yield _chunk({}, "length")
            if reply.mode != "no-usage":
                usage = {"prompt_tokens": 10, "completion_tokens": reply.tokens}
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/version", version),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )


@contextmanager
def fake_openai_server(plan: Plan | None = None, **options: Any) -> Iterator[FakeServer]:
    """Serve the fake on 127.0.0.1 (a free port) in a thread of this process."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = FakeServer(f"http://127.0.0.1:{port}", plan or (lambda _n: Reply()), **options)
    config = uvicorn.Config(_app(server), log_level="critical", access_log=False)
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake server did not start in 10 s")
        time.sleep(0.01)
    try:
        yield server
    finally:
        runner.should_exit = True
        thread.join(timeout=10)
        sock.close()
