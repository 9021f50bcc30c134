"""Several server processes on one database (docs/operations.md, "Several processes and
replicas"): ``carbonlabel serve --workers N``, replicas whose validators agree and see each
other's changes, and the setting that keeps psycopg from preparing statements on the server (for
PgBouncer in transaction mode)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from registry.config import Settings
from registry.db import make_engine
from registry.main import create_app
from tests.helpers import ADMIN_TOKEN, LOG_KEY_B64, register_publisher
from tests.server import free_port, running_server

REPLICA_URL = "http://registry.test"


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its closing paren
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.add(int(entry.name))
    return found


@pytest.mark.server
def test_serve_with_two_workers_runs_two_serving_processes(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLABEL_")}
    environment |= {
        "CARBONLABEL_ADMIN_TOKEN": ADMIN_TOKEN,
        "CARBONLABEL_LOG_SIGNING_KEY": LOG_KEY_B64,
        "XDG_DATA_HOME": str(tmp_path),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "carbonlabel", "serve", "--workers", "2", "--port", str(port)],
            cwd=tmp_path,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            started: list[str] = []
            while len(started) < 2:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                started = re.findall(r"Application startup complete", log.read_text())
                time.sleep(0.2)
            # each worker logged its own start; both are children of the serving process
            workers = {
                int(p) for p in re.findall(r"Started server process \[(\d+)\]", log.read_text())
            }
            assert len(workers) == 2, log.read_text()
            assert workers <= _children(process.pid)
            with httpx.Client(base_url=base, timeout=5) as client:
                for _ in range(10):
                    assert client.get("/healthz").status_code == 200
                assert client.get("/readyz").status_code == 200
                assert client.get("/methodology").headers["etag"]
        finally:
            process.send_signal(signal.SIGINT)
            try:
                code = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
    text_out = log.read_text()
    assert code == 0, text_out
    assert text_out.count("Application shutdown complete") == 2, text_out
    assert "Traceback" not in text_out
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


@pytest.mark.server
def test_replicas_agree_on_validators_and_see_each_others_changes(
    db: Engine, database_url: str
) -> None:
    env = {"CARBONLABEL_PUBLIC_URL": REPLICA_URL}
    with (
        running_server(database_url, ADMIN_TOKEN, **env) as first,
        running_server(database_url, ADMIN_TOKEN, **env) as second,
        httpx.Client(base_url=first, timeout=10) as one,
        httpx.Client(base_url=second, timeout=10) as two,
    ):
        publisher = register_publisher(one, "acme", audience=REPLICA_URL)
        before = two.get("/vendors/acme")
        assert before.status_code == 200
        # the same answer from either replica: the same validator, so a load balancer that
        # alternates between them still gets 304s
        assert one.get("/vendors/acme").headers["etag"] == before.headers["etag"]
        assert (
            one.get("/vendors/acme", headers={"If-None-Match": before.headers["etag"]}).status_code
            == 304
        )
        envelope = publisher.envelope(model="model-z", registry=REPLICA_URL)
        submitted = one.post("/v1/labels", content=envelope, headers=publisher.headers)
        assert submitted.status_code == 201, submitted.text
        after = two.get("/vendors/acme", headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert "model-z" in after.text
        assert after.headers["etag"] != before.headers["etag"]


# -- prepared statements (PgBouncer in transaction mode) --------------------------------------


def _prepared_count(engine: Engine) -> tuple[Any, int]:
    with engine.connect() as connection:
        threshold = connection.connection.driver_connection.prepare_threshold  # type: ignore[union-attr]
        count = connection.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
        connection.commit()
    return threshold, int(count)


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONLABEL_DATABASE_PREPARED_STATEMENTS", "false")
    assert Settings().database_prepared_statements is False
    monkeypatch.delenv("CARBONLABEL_DATABASE_PREPARED_STATEMENTS")
    assert Settings().database_prepared_statements is True


@pytest.mark.postgres
def test_an_engine_without_prepared_statements_prepares_none(postgres_url: str) -> None:
    for prepared in (True, False):
        engine = make_engine(
            postgres_url, prepared_statements=prepared, pool_size=1, max_overflow=0
        )
        try:
            for _ in range(8):  # over psycopg's default prepare_threshold of 5
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1 + 1")).scalar_one()
                    connection.commit()
            threshold, count = _prepared_count(engine)
        finally:
            engine.dispose()
        if prepared:
            assert (threshold, count > 0) == (5, True)
        else:
            assert (threshold, count) == (None, 0)


@pytest.mark.postgres
def test_a_request_cycle_without_prepared_statements(db: Engine, settings: Settings) -> None:
    """The app's own engine (made in its lifespan from the settings) prepares nothing, through
    writes, pages, rankings and their revalidation."""
    no_prepare = settings.model_copy(update={"database_prepared_statements": False})
    with TestClient(create_app(no_prepare), raise_server_exceptions=False) as client:
        publisher = register_publisher(client, "acme")
        for i in range(6):
            response = client.post(
                "/v1/labels",
                content=publisher.envelope(model=f"m{i % 2}"),
                headers=publisher.headers,
            )
            assert response.status_code == 201, response.text
        for path in (
            "/",
            "/vendors/acme",
            "/models/acme/m0",
            "/v1/vendors?task=text-classification&phase=inference",
        ):
            for _ in range(3):
                page = client.get(path)
                assert page.status_code == 200, path
            etag = page.headers["etag"]
            assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
        engine = client.app.state.engine  # type: ignore[attr-defined]
        # every pooled connection: none has a prepared statement
        pool_size = engine.pool.checkedin()
        assert pool_size >= 1
        connections = [engine.connect() for _ in range(pool_size)]
        try:
            for connection in connections:
                assert connection.connection.driver_connection.prepare_threshold is None
                prepared = connection.execute(text("SELECT count(*) FROM pg_prepared_statements"))
                assert prepared.scalar_one() == 0
                connection.commit()
        finally:
            for connection in connections:
                connection.close()


def _plan_mode(engine: Engine) -> str:
    with engine.connect() as connection:
        mode = str(connection.execute(text("SHOW plan_cache_mode")).scalar_one())
        connection.commit()
    return mode


@pytest.mark.postgres
def test_an_engine_with_generic_plans_plans_a_prepared_statement_once(postgres_url: str) -> None:
    """``generic_plans``: every connection of the engine plans its prepared statements once
    (``plan_cache_mode = force_generic_plan``), and stays out of autocommit as SQLAlchemy made
    it; without prepared statements, or by default, the server's own mode is kept."""
    engine = make_engine(postgres_url, generic_plans=True, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            assert raw.autocommit is False
            for value in range(8):  # over psycopg's prepare_threshold of 5
                found = connection.execute(text("SELECT :v + 1 AS n"), {"v": value}).scalar_one()
                assert found == value + 1
            plans = connection.execute(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE '%+ 1 AS n%'"
                )
            ).one()
            connection.commit()
        assert plans.generic_plans > 0
        assert plans.custom_plans == 0
        assert _plan_mode(engine) == "force_generic_plan"
    finally:
        engine.dispose()
    for kwargs in ({}, {"generic_plans": True, "prepared_statements": False}):
        other = make_engine(postgres_url, pool_size=1, max_overflow=0, **kwargs)
        try:
            assert _plan_mode(other) == "auto"
        finally:
            other.dispose()


@pytest.mark.postgres
def test_the_apps_engine_plans_once_unless_told_not_to(db: Engine, settings: Settings) -> None:
    """The app's own engine (made in its lifespan) sets the mode from
    ``database_generic_plans`` (on by default), and answers the same either way."""
    assert Settings.model_fields["database_generic_plans"].default is True
    answers = []
    for generic in (True, False):
        chosen = settings.model_copy(update={"database_generic_plans": generic})
        with TestClient(create_app(chosen)) as client:
            engine = client.app.state.engine  # type: ignore[attr-defined]
            assert _plan_mode(engine) == ("force_generic_plan" if generic else "auto")
            answers.append(client.get("/v1/vendors?task=text-classification&phase=inference"))
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
