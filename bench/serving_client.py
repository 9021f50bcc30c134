"""The chat-serving load generator's own CPU cost per request, against an instant fake server.

Usage: .venv/bin/python bench/serving_client.py [--levels 1,8,32,128] [--seconds 8] [--tokens 256]

The fake server runs in a separate process (so this process's CPU time is the client's alone):
it answers every streamed chat request at once with ``--tokens`` content chunks (one per token,
as vLLM streams), a finish chunk, the usage chunk and ``[DONE]``. At each concurrency the
client (``bench_runner.serving.load.LoadGenerator``, exactly as ``carbonlabel bench`` runs it)
sends the suite's GSM8K prompts for ``--seconds``; the figures are this process's CPU time
(``time.process_time``: every thread) per completed request and per streamed token, and the
share of one core the client used. With an instant server the client is the bottleneck, so the
requests and tokens per second are the most this client can drive on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from typing import Any

import httpx


def serve(port: int, tokens: int) -> None:
    """The instant fake server (run in its own process)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {"id": "b", "object": "chat.completion.chunk"}
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]  # type: ignore[assignment]
        return f"data: {json.dumps(body)}\n\n".encode()

    token_chunks = [chunk({"content": f" tok{i}"}) for i in range(tokens)]
    tail = [
        chunk({}, "length"),
        b'data: {"choices": [], "usage": {"prompt_tokens": 60, "completion_tokens": %d}}\n\n'
        % tokens,
        b"data: [DONE]\n\n",
    ]

    async def models(_request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake", "owned_by": "bench"}]})

    async def chat(request: Request) -> Response:
        await request.body()

        async def stream() -> Any:
            yield chunk({"role": "assistant"})
            for part in token_chunks:
                yield part
            for part in tail:
                yield part

        return StreamingResponse(stream(), media_type="text/event-stream")

    app = Starlette(
        routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"])]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_model() -> str:
    from bench_runner.hardware import cpu_model_name

    return cpu_model_name()


def measure(base: str, concurrency: int, seconds: float, tokens: int) -> dict[str, float]:
    from bench_runner.serving.label import request_prompts
    from bench_runner.serving.load import LoadGenerator

    _sample, prompts = request_prompts(None)
    with LoadGenerator(base, "fake", prompts, tokens) as load:
        load.start(concurrency)  # a short warm-up: connections opened, code paths hot
        time.sleep(1.0)
        load.stop()
        start = len(load.results)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        load.start(concurrency)
        time.sleep(seconds)
        load.stop()
        cpu_s = time.process_time() - cpu0
        wall_s = time.perf_counter() - wall0
        done = load.results[start:]
    ok = [r for r in done if r.ok]
    if len(ok) != len(done):
        raise SystemExit(f"{len(done) - len(ok)} requests failed: {done[0].describe()}")
    streamed = sum(r.output_tokens for r in ok)
    return {
        "concurrency": concurrency,
        "requests": len(ok),
        "cpu_ms_per_request": 1000 * cpu_s / len(ok),
        "cpu_us_per_token": 1e6 * cpu_s / streamed,
        "core_share": cpu_s / wall_s,
        "requests_per_s": len(ok) / wall_s,
        "tokens_per_s": streamed / wall_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.tokens)
        return
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--tokens", str(args.tokens)]
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/v1/models", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        print(
            f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs; Python "
            f"{platform.python_version()}, httpx {httpx.__version__}; {args.tokens} tokens per "
            f"response; {args.seconds:g} s per level"
        )
        print(
            "| concurrency | requests | CPU ms / request | CPU µs / token | share of a core "
            "| requests/s | tokens/s |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for level in (int(v) for v in args.levels.split(",")):
            row = measure(base, level, args.seconds, args.tokens)
            print(
                f"| {level} | {row['requests']:,} | {row['cpu_ms_per_request']:.2f} "
                f"| {row['cpu_us_per_token']:.1f} | {row['core_share']:.0%} "
                f"| {row['requests_per_s']:.1f} | {row['tokens_per_s']:,.0f} |",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
