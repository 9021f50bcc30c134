"""The data version read after a cached body by the route itself (registry/version_after.py):
on the request's own session, in the route's thread, once per miss; not for answers whose body
is read later; routes wrapped once however many apps a process makes. Runs on SQLite, and on
PostgreSQL with CARBONLABEL_TEST_DATABASE_URL set."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from starlette.responses import Response, StreamingResponse

from registry import http_cache, version_after
from registry.config import Settings
from registry.http_cache import DataVersion
from registry.main import create_app
from tests.helpers import Publisher

RANKING = "/v1/vendors?task=text-classification&phase=inference"


@pytest.fixture
def labelled(client: TestClient, publisher: Publisher) -> Publisher:
    response = client.post(
        "/v1/labels",
        content=publisher.envelope(model="model-a", power_w=300.0),
        headers=publisher.headers,
    )
    assert response.status_code == 201, response.text
    return publisher


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Connection, str]]:
    """Each read of the version after a body: its connection and the thread that ran it."""
    seen: list[tuple[Connection, str]] = []
    real = http_cache.read_data_version_on

    def read(connection: Connection) -> DataVersion:
        seen.append((connection, threading.current_thread().name))
        return real(connection)

    monkeypatch.setattr(http_cache, "read_data_version_on", read)
    return seen


@pytest.mark.parametrize("path", ["/", "/vendors/acme", RANKING, RANKING + "&format=csv"])
def test_a_miss_reads_the_version_once_on_the_routes_own_session(
    client: TestClient,
    labelled: Publisher,
    reads: list[tuple[Connection, str]],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    handed: list[Connection] = []
    real_connection = Session.connection

    def connection(self: Session, *args: Any, **kwargs: Any) -> Connection:
        handed.append(real_connection(self, *args, **kwargs))
        return handed[-1]

    monkeypatch.setattr(Session, "connection", connection)
    first = client.get(path)
    assert first.status_code == 200
    assert len(reads) == 1  # by the route, not again by the middleware
    read_on, thread = reads[0]
    assert any(read_on is c for c in handed)  # the connection of the request's session
    assert thread != threading.main_thread().name  # in the thread pool, with the route
    # the version it read validates the answer: a conditional GET is a 304
    assert client.get(path, headers={"If-None-Match": first.headers["etag"]}).status_code == 304


def test_without_a_cache_nothing_is_read_after(client: TestClient, labelled: Publisher) -> None:
    """The wrapper reads only inside the cache's render (``expecting``): a route called outside
    it, as by another middleware's own render, answers as it is."""
    route = next(
        r
        for r in client.app.router.routes  # type: ignore[attr-defined]
        if isinstance(r, APIRoute) and r.path == "/v1/vendors" and "GET" in r.methods
    )
    calls: list[Connection] = []

    def read(connection: Connection) -> str:
        calls.append(connection)
        return "version"

    wrapped = version_after.reading_after(lambda **_: Response(b"x"), read)
    assert getattr(route.dependant.call, "reads_version_after", False)
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        assert wrapped(session=session).body == b"x"
        assert calls == []
        with version_after.expecting() as pending:
            wrapped(session=session)
        assert len(calls) == 1
        assert pending.version == "version"
        with version_after.expecting() as pending:  # no session: nothing to read on
            wrapped()
        assert len(calls) == 1
        assert not pending.done


def test_a_body_made_after_the_route_is_not_confirmed_by_it(db: Engine) -> None:
    """A streaming answer's body is made after the route returns: a read at its end would not
    follow the body, so it leaves the read to the middleware."""
    calls: list[Connection] = []

    def stream() -> Iterator[bytes]:
        yield b"late"

    wrapped = version_after.reading_after(lambda **_: StreamingResponse(stream()), calls.append)
    with Session(db) as session, version_after.expecting() as pending:
        wrapped(session=session)
    assert calls == []
    assert not pending.done


def test_a_failed_read_is_reported_not_raised(db: Engine) -> None:
    def failing(connection: Connection) -> DataVersion:
        raise RuntimeError("log_head has no row")

    wrapped = version_after.reading_after(lambda **_: Response(b"x"), failing)
    with Session(db) as session, version_after.expecting() as pending:
        assert wrapped(session=session).body == b"x"
    assert pending.failed
    assert pending.version is None
    assert pending.done


def test_routes_are_wrapped_once_however_many_apps(db: Engine, settings: Settings) -> None:
    for _ in range(3):
        create_app(settings, engine=db)
    routes = [
        r
        for r in create_app(settings, engine=db).router.routes
        if isinstance(r, APIRoute) and getattr(r.dependant.call, "reads_version_after", False)
    ]
    assert {r.path for r in routes} >= {"/", "/vendors/{vendor}", "/v1/vendors"}
    for route in routes:
        inner = route.dependant.call.__wrapped__  # type: ignore[union-attr]
        assert not getattr(inner, "reads_version_after", False), route.path
    # the badge routes are not cached here (they have their own cache): not wrapped
    badge = next(
        r
        for r in create_app(settings, engine=db).router.routes
        if isinstance(r, APIRoute) and r.path.startswith("/badge/")
    )
    assert not getattr(badge.dependant.call, "reads_version_after", False)
