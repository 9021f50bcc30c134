"""Fixtures: one migrated database per session (SQLite file, or PostgreSQL when
CARBONLABEL_TEST_DATABASE_URL is set), emptied after every test; an app client on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from registry.config import Settings
from registry.db import make_engine, upgrade
from registry.main import create_app
from tests.helpers import (
    ADMIN_TOKEN,
    AUDIENCE,
    LOG_KEY_B64,
    Publisher,
    register_publisher,
    reset_log,
)

PG_ENV = "CARBONLABEL_TEST_DATABASE_URL"
TABLES = (
    "vendor_standings",
    "current_counts",
    "peer_bins",
    "ranking_totals",
    "attestations",
    "auditors",
    "labels",
    "models",
    "public_keys",
    "api_tokens",
    "vendors",
    "rate_limits",
)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'registry.db'}"
    url = Settings(database_url=url).resolved_database_url()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    except OperationalError as exc:
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc}", pytrace=False)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
        reset_log(conn)


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    """The migrated engine, emptied after the test."""
    yield engine
    empty_tables(engine)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        log_signing_key=LOG_KEY_B64,
        public_url=AUDIENCE,
        rate_limit_per_minute=6000,
        rate_limit_burst=1000,
        rate_limit_per_address_per_minute=60000,
        rate_limit_per_address_burst=10000,
        gc_tuning=False,  # a full collection per app would slow the suite (test_gc_tuning.py)
    )


@pytest.fixture
def client(db: Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=db), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def publisher(client: TestClient) -> Publisher:
    return register_publisher(client, "acme")


@pytest.fixture
def other_publisher(client: TestClient) -> Publisher:
    return register_publisher(client, "globex")


@pytest.fixture(scope="session")
def postgres_url(database_url: str) -> str:
    """The PostgreSQL URL; tests marked ``postgres`` fail (never skip) without one."""
    if not database_url.startswith("postgresql"):
        pytest.fail(
            f"this test needs PostgreSQL: set {PG_ENV}, or deselect it with -m 'not postgres'",
            pytrace=False,
        )
    return database_url


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
