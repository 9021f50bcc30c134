"""Closed-loop load: ``concurrency`` workers, each sending its next request when its previous one
ends, on an event loop of its own thread (the protocol's thread opens and closes the meters'
windows meanwhile).

The requests are the sample's prompts in sample order, cycling: the n-th request sent (over all
workers and levels) carries prompt ``n mod len(prompts)``. Every request that ends, completed or
failed, is appended to ``LoadGenerator.results`` in the order it ended; the protocol reads the
list by position (appending and reading a list are atomic under the GIL).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import httpx

from bench_runner.serving.client import CHAT_PATH, RequestResult, chat_body, send_chat

Clock = Callable[[], float]


class LoadGenerator:
    """Sends the request stream to one endpoint at one concurrency level at a time."""

    def __init__(
        self,
        base_url: str,
        model: str,
        prompts: Sequence[str],
        max_tokens: int,
        *,
        request_timeout_s: float = 600.0,
        headers: dict[str, str] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if not prompts:
            raise ValueError("no prompts to send")
        self.url = base_url + CHAT_PATH
        self.bodies = [chat_body(model, prompt, max_tokens) for prompt in prompts]
        self.request_timeout_s = request_timeout_s
        self.headers = dict(headers or {})
        self.clock = clock
        #: every request that ended, in the order it ended
        self.results: list[RequestResult] = []
        self.sent = 0
        self._cursor = 0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._level: Future[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> LoadGenerator:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="carbonlabel-load", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the load (in-flight requests are cancelled) and the loop's thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._level is not None and not self._level.done():
            self._stopping = True
            self._level.cancel()
        with contextlib.suppress(Exception):  # finalise the streams' async generators
            asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    # -- levels ----------------------------------------------------------------------------------

    def start(self, concurrency: int) -> None:
        """Start ``concurrency`` workers (the previous level must have been stopped)."""
        if self._loop is None:
            raise RuntimeError("the load generator is not running (use it as a context manager)")
        if self._level is not None and not self._level.done():
            raise RuntimeError("a level is already running")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._stopping = False
        self._level = asyncio.run_coroutine_threadsafe(self._run(concurrency), self._loop)

    def stop(self, drain_timeout_s: float | None = None) -> None:
        """Send no more requests and wait for those in flight to end (each ends at the latest at
        the request timeout; ``drain_timeout_s`` cancels them sooner)."""
        level = self._level
        if level is None:
            return
        self._stopping = True
        limit = self.request_timeout_s + 30.0 if drain_timeout_s is None else drain_timeout_s
        try:
            level.result(timeout=limit)
        except TimeoutError:
            level.cancel()
        finally:
            self._level = None

    def check(self) -> None:
        """Raise what a worker raised (a bug, not a failed request: those are results)."""
        level = self._level
        if level is not None and level.done() and not level.cancelled():
            level.result()

    @property
    def running(self) -> bool:
        return self._level is not None and not self._level.done()

    # -- the loop's side -------------------------------------------------------------------------

    async def _run(self, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=concurrency)
        timeout = httpx.Timeout(self.request_timeout_s, connect=min(30.0, self.request_timeout_s))
        async with httpx.AsyncClient(
            limits=limits, timeout=timeout, headers=self.headers
        ) as client:
            workers = [asyncio.create_task(self._worker(client)) for _ in range(concurrency)]
            try:
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()

    async def _worker(self, client: httpx.AsyncClient) -> None:
        while not self._stopping:
            index = self._cursor
            self._cursor = (index + 1) % len(self.bodies)
            self.sent += 1
            body: dict[str, Any] = self.bodies[index]
            result = await send_chat(
                client,
                self.url,
                body,
                index,
                timeout_s=self.request_timeout_s,
                clock=self.clock,
            )
            self.results.append(result)
