"""Reference app for ``bench/ingest.py``: the floor under the registry's ingest path.

A bare ASGI callable (no framework) served by the same uvicorn, one worker. ``POST /ingest``
reads the body and, in a worker thread (anyio's default pool of 40 threads, the same pool that
runs the registry's sync routes), INSERTs the bytes into ``bench_ref`` with raw psycopg 3 over one
connection per worker thread, commits, and answers 201. No parsing, no signature check, no schema.

Run by ``bench/ingest.py`` as
``uvicorn --app-dir bench --factory ref_app:create_app`` with ``BENCH_REF_DSN`` set to a libpq
connection string; the table must exist (``ingest.py`` creates it).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import psycopg

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

INSERT = "INSERT INTO bench_ref (envelope) VALUES (%s) RETURNING id"


class _Store:
    """One psycopg connection per worker thread, opened on first use, closed at shutdown."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[psycopg.Connection[Any]] = []

    def _connection(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.dsn)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def insert(self, body: bytes) -> int:
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                cur.execute(INSERT, (body,))
                row = cur.fetchone()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


def create_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    store = _Store(os.environ["BENCH_REF_DSN"])

    async def respond(send: Send, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    store.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz" and method == "GET":
            await respond(send, 200, {"status": "ok"})
            return
        if path != "/ingest" or method != "POST":
            await respond(send, 404, {"detail": "not found"})
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        row_id = await anyio.to_thread.run_sync(store.insert, b"".join(chunks))
        await respond(send, 201, {"id": row_id})

    return app
