"""Faults: PostgreSQL goes down and comes back while a client with retries streams signed labels.

A private cluster (tests/pgtemp.py; the shared server is never touched) under a real uvicorn
server. After a third of the labels PostgreSQL is stopped (``immediate``: a crash, with WAL
recovery at the next start; ``fast``: a clean shutdown that ends the sessions), then started
again. While it is down /readyz answers 503 ``not-ready``, /healthz 200, and label submissions
503 ``unavailable`` problems with Retry-After; once it is back the same server process is ready
again, and every acknowledged label is stored exactly once.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from bench_runner.client import RegistryClient, RegistryError
from registry.db import make_engine, upgrade
from registry.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from schemas import merkle
from schemas.note import open_checkpoint
from schemas.synthetic import make_label
from tests.helpers import ADMIN_TOKEN, envelope_bytes, register_publisher
from tests.pgtemp import temporary_postgres
from tests.server import server_process

pytestmark = pytest.mark.postgres

LABELS = 150
STOP_AFTER = LABELS // 3
OUTAGE_S = 3.0


@dataclass
class Seen:
    at: float
    method: str
    path: str
    status: int
    content_type: str
    retry_after: str | None
    body: Any


@dataclass
class RecordingTransport(httpx.BaseTransport):
    """Passes requests on and keeps every answer the client got, retried ones included."""

    inner: httpx.BaseTransport = field(default_factory=httpx.HTTPTransport)
    seen: list[Seen] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        content = response.read()
        try:
            body: Any = httpx.Response(200, content=content).json()
        except ValueError:
            body = content[:500]
        self.seen.append(
            Seen(
                time.monotonic(),
                request.method,
                request.url.path,
                response.status_code,
                response.headers.get("content-type", ""),
                response.headers.get("retry-after"),
                body,
            )
        )
        return response

    def close(self) -> None:
        self.inner.close()


def _wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def _is_problem(response: httpx.Response, kind: str, status: int) -> bool:
    return (
        response.status_code == status
        and response.headers.get("content-type", "").startswith(PROBLEM_MEDIA_TYPE)
        and response.json().get("type") == PROBLEM_BASE + kind
    )


@pytest.mark.parametrize("stop_mode", ["immediate", "fast"])
def test_postgres_restart_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, stop_mode: str
) -> None:
    server_log = tmp_path / "server.log"
    with (
        temporary_postgres() as pg,
        server_log.open("wb") as output,
    ):
        upgrade(pg.url)
        with server_process(pg.url, ADMIN_TOKEN, output=output) as server:
            base, pid = server.base, server.process.pid
            with httpx.Client(base_url=base, timeout=10) as http:
                publisher = register_publisher(http, "acme", audience=base)
                labels = [
                    make_label(vendor="acme", model=f"m{i % 3}", registry=base, seed=i)
                    for i in range(LABELS)
                ]
                bodies = [envelope_bytes(label, publisher.key) for label in labels]

                acks: list[tuple[str, int]] = []
                failures: list[str] = []
                recorder = RecordingTransport()

                def stream() -> None:
                    # backoff 0.1 s doubling, each wait at least the server's Retry-After (1 s):
                    # 12 retries keep one label trying for over a minute
                    with RegistryClient(
                        base,
                        publisher.token,
                        transport=recorder,
                        retries=12,
                        backoff_s=0.1,
                        timeout_s=10,
                    ) as client:
                        for label, body in zip(labels, bodies, strict=True):
                            try:
                                status, view = client.submit(body)
                            except RegistryError as exc:
                                failures.append(f"{label['label_id']}: {exc}")
                                continue
                            if view.get("label_id") != label["label_id"]:
                                failures.append(f"{label['label_id']}: answered with {view}")
                                continue
                            acks.append((view["label_id"], status))

                streamer = threading.Thread(target=stream, name="label-stream", daemon=True)
                streamer.start()
                _wait_for(lambda: len(acks) >= STOP_AFTER, 30, f"{STOP_AFTER} acknowledgements")

                # immediate: a crash (WAL recovery at the next start); fast: a clean shutdown
                # that ends the sessions. pg_ctl -w returns once the postmaster is gone.
                log_key = http.get("/v1/log").json()["verifier_key"]
                before = open_checkpoint(http.get("/v1/log/checkpoint").text, log_key)
                pg.stop(stop_mode)
                down_at = time.monotonic()
                readiness: list[httpx.Response] = []
                while time.monotonic() - down_at < OUTAGE_S:
                    readiness.append(http.get("/readyz"))
                    assert http.get("/healthz").status_code == 200
                    time.sleep(0.2)
                acked_during_outage = len(acks)
                pg.start()  # WAL recovery; pg_ctl -w returns once it accepts connections
                up_at = time.monotonic()

                assert readiness, "/readyz was never asked during the outage"
                for response in readiness:
                    assert _is_problem(response, "not-ready", 503), (
                        response.status_code,
                        response.text,
                    )

                # Ready again without a restart of the server.
                _wait_for(lambda: http.get("/readyz").status_code == 200, 20, "/readyz 200")
                streamer.join(timeout=60)
                assert not streamer.is_alive(), "the stream did not finish"

                assert server.process.poll() is None, "the server process exited"
                assert server.process.pid == pid
                assert http.get("/healthz").status_code == 200
                ready = http.get("/readyz")
                assert ready.status_code == 200, ready.text
                # The log: the checkpoint after the outage extends the one before it.
                after = open_checkpoint(http.get("/v1/log/checkpoint").text, log_key)
                proof = http.get(
                    f"/v1/log/proof/consistency?first={before.tree_size}&second={after.tree_size}"
                ).json()["proof"]
                assert merkle.verify_consistency(
                    before.tree_size,
                    after.tree_size,
                    before.root_hash,
                    after.root_hash,
                    [base64.b64decode(h) for h in proof],
                )

        assert server.process.returncode is not None  # stopped by us, at the end

        # Every label acknowledged (201, or 200 when an earlier attempt had stored it), none lost.
        assert failures == []
        acked_ids = [label_id for label_id, _ in acks]
        assert {status for _, status in acks} <= {200, 201}
        assert len(acked_ids) == len(set(acked_ids)) == LABELS
        assert set(acked_ids) == {label["label_id"] for label in labels}
        # the stream waited out the outage: some labels were acknowledged after the restart
        assert acked_during_outage < LABELS

        # What the client saw on the way: the outage answered as 503 problems, never a 500.
        posts = [s for s in recorder.seen if s.method == "POST" and s.path == "/v1/labels"]
        failed = [s for s in posts if s.status >= 500]
        assert failed, "no submission met the outage"
        for answer in failed:
            assert answer.status == 503, answer
            assert answer.content_type.startswith(PROBLEM_MEDIA_TYPE), answer
            assert isinstance(answer.body, dict), answer
            assert answer.body["type"] == PROBLEM_BASE + "unavailable", answer
            assert (answer.retry_after or "").isdigit(), answer
            assert down_at - 1 <= answer.at <= up_at + 5, "a 503 outside the outage"
        assert {s.status for s in posts} <= {200, 201, 503}

        # Stored exactly once: the database itself, after the crash recovery.
        engine = make_engine(pg.url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT id, count(*) FROM labels GROUP BY id ORDER BY id")
                ).all()
                models = conn.execute(text("SELECT count(*) FROM models")).scalar_one()
                entries = conn.execute(
                    text("SELECT idx, leaf, label_id FROM log_entries ORDER BY idx")
                ).all()
                indexes: dict[str, int] = {
                    row.id: row.log_index
                    for row in conn.execute(text("SELECT id, log_index FROM labels"))
                }
        finally:
            engine.dispose()
        assert all(count == 1 for _, count in rows), [r for r in rows if r[1] != 1]
        assert len(rows) == LABELS
        assert {row[0] for row in rows} == set(acked_ids)
        assert models == 3
        # The log holds the key and every label exactly once, without gaps, and the server's
        # last checkpoint is the root of exactly these leaves.
        assert [e.idx for e in entries] == list(range(len(entries)))
        logged = [e.label_id for e in entries if e.label_id is not None]
        assert sorted(logged) == sorted(acked_ids)
        assert len(entries) == LABELS + 1
        assert all(entries[indexes[label_id]].label_id == label_id for label_id in acked_ids)
        leaves = [merkle.leaf_hash(bytes(e.leaf)) for e in entries]
        assert after.tree_size == len(entries)
        assert merkle.root_of_leaves(leaves) == after.root_hash

    # The server logged the outage as warnings, not as tracebacks.
    log = server_log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert "Exception in ASGI application" not in log, log[-4000:]
    assert "database unavailable" in log, log[-4000:]
