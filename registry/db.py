"""Engine construction and the migration helpers (Alembic owns the schema)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import orjson
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func
from sqlalchemy import column as sql_column
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError

from alembic import command

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def make_engine(
    url: str, *, prepared_statements: bool = True, generic_plans: bool = False, **kwargs: Any
) -> Engine:
    """An engine with the settings each backend needs (SQLite: WAL, foreign keys, busy timeout).

    ``prepared_statements=False`` (PostgreSQL): psycopg never prepares statements on the server
    (``prepare_threshold=None``), for a pooler in transaction mode that hands each transaction
    to another server connection (PgBouncer before 1.22 or without ``max_prepared_statements``).

    ``generic_plans`` (PostgreSQL, with prepared statements): each new connection sets
    ``plan_cache_mode = force_generic_plan``, so that a prepared statement is planned once for
    all its values. Left to itself PostgreSQL plans some statements again at every run (a
    "custom" plan, when it estimates the generic one dearer): at 1M labels the label list's,
    a label's and the ranking's reads, 0.15 to 0.4 ms of the database's CPU each time, as much
    as the read itself; their generic plans use the same indexes, and every read of the pages
    and the API's lists ran in 0.2 to 1.1 times its custom plan's time (the 1.1: the one-row
    read of the log's head, within noise; docs/performance.md).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if not prepared_statements:
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "prepare_threshold": None}
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping (it costs a round trip per request): after a disconnect SQLAlchemy invalidates
    # the whole pool, so a database restart fails at most the requests in flight.
    engine = create_engine(url, **kwargs)
    if prepared_statements and generic_plans:
        event.listen(engine, "connect", _generic_plans)
    return engine


def _generic_plans(dbapi_connection: Any, _record: Any) -> None:
    """A new PostgreSQL connection plans its prepared statements once (``make_engine``). Set
    for the session, outside any transaction; a pooler in transaction mode may carry it to
    other clients' sessions, where it changes no answer, only when plans are made."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute("SET plan_cache_mode = force_generic_plan")
    finally:
        dbapi_connection.autocommit = autocommit


def single_read(engine: Engine) -> Connection:
    """A connection for one read statement, in autocommit: no BEGIN before it and no ROLLBACK
    or COMMIT after it, so one round trip instead of three, and psycopg keeps the connection's
    prepared statements (it drops them all on ROLLBACK). One statement sees one snapshot, so
    this is only for reads of one statement (the badges, the log's head)."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def read_row(
    engine: Engine, sql: str, params: Mapping[str, Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of one read statement (``sql``: its text for the driver; ``params`` only
    on PostgreSQL, named ``%(name)s``) on the pool's driver connection itself, in autocommit
    on PostgreSQL: SQLAlchemy's connection, execution options and result objects cost three
    times the read (308 against 85 microseconds of CPU for the log's head, which the HTTP cache
    reads on every request). Values come as the driver gives them (no SQLAlchemy type
    processing). A failure is a :class:`sqlalchemy.exc.DBAPIError`, and a lost connection is
    invalidated in the pool, as SQLAlchemy does. (SQLite's driver begins no transaction for a
    SELECT.)"""
    pooled = engine.raw_connection()
    raw: Any = pooled.driver_connection
    postgres = engine.dialect.name == "postgresql"
    try:
        if postgres:
            raw.autocommit = True
        try:
            _announce(engine, None, sql, params)
            cursor = raw.execute(sql) if params is None else raw.execute(sql, params)
            return cursor.fetchone()
        finally:
            if postgres and not raw.closed:
                raw.autocommit = False
    except engine.dialect.loaded_dbapi.Error as exc:
        if postgres and raw.closed:
            pooled.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, engine.dialect.loaded_dbapi.Error) from exc
    finally:
        pooled.close()


def _announce(
    target: Engine | Connection, connection: Connection | None, sql: str, params: Any
) -> None:
    """A read on the driver, told to SQLAlchemy's ``before_cursor_execute`` listeners as its
    own statements are (the tests' statement counts, ``bench/scale.py``'s EXPLAIN of every
    statement a route runs); no cursor or execution context is given."""
    listeners = target.dispatch.before_cursor_execute
    if listeners:
        listeners(connection, None, sql, params, None, False)


@functools.lru_cache(maxsize=256)
def driver_sql(statement: Any, dialect: Dialect) -> tuple[str, dict[str, Any]] | None:
    """A statement's text for the driver and the values of its constant parameters (a LIMIT's,
    an enumeration's value), compiled once per statement object and dialect (for
    :func:`first_row`); None when a constant is of a type that SQLAlchemy must convert (a JSON
    path), so the statement goes through SQLAlchemy."""
    compiled = statement.compile(dialect=dialect)
    constants: dict[str, Any] = {}
    for name, value in compiled.params.items():
        if isinstance(value, Enum):
            value = value.value
        if value is None:
            continue  # a parameter the caller gives
        if not isinstance(value, str | int | float):
            return None
        constants[name] = value
    text = str(compiled)
    if "POSTCOMPILE" in text:  # an expanding IN list: SQLAlchemy renders it per call
        return None
    return text, constants


def first_row(engine: Engine, statement: Any, params: Mapping[str, Any]) -> Any:
    """The first row of a read statement built once (``statement``, its parameters named),
    in autocommit: on PostgreSQL by :func:`read_row` on the driver's connection (its columns
    and parameters must need no SQLAlchemy type processing: text, numbers, booleans);
    elsewhere, or for a statement :func:`driver_sql` declines, through SQLAlchemy
    (:func:`single_read`)."""
    compiled = (
        driver_sql(statement, engine.dialect) if engine.dialect.name == "postgresql" else None
    )
    if compiled is not None:
        sql, constants = compiled
        return read_row(engine, sql, driver_params(constants | dict(params)))
    with single_read(engine) as connection:
        return connection.execute(statement, dict(params)).first()


def read_mappings(connection: Connection, statement: Any, params: Mapping[str, Any]) -> list[Any]:
    """The rows of a read statement built once, as mappings by column name, on ``connection``
    (in its transaction, if it has one): on PostgreSQL by psycopg on its driver connection, as
    :func:`first_row` (the same conditions on types), which costs about half of SQLAlchemy's
    execution and result objects; elsewhere, or for a statement :func:`driver_sql` declines,
    through SQLAlchemy."""
    compiled = (
        driver_sql(statement, connection.dialect)
        if connection.dialect.name == "postgresql"
        else None
    )
    if compiled is None:
        return list(connection.execute(statement, dict(params)).mappings())
    sql, constants = compiled
    raw: Any = connection.connection.driver_connection
    error = connection.dialect.loaded_dbapi.Error
    bound = driver_params(constants | dict(params))
    with raw.cursor(row_factory=dict_row) as cursor:
        _announce(connection, connection, sql, bound)
        try:
            cursor.execute(sql, bound)
        except error as exc:
            if raw.closed:  # the connection was lost: out of the pool, as SQLAlchemy does
                connection.invalidate(exc)
            raise DBAPIError.instance(sql, None, exc, error) from exc
        return cursor.fetchall()


def array_literal(values: list[Any]) -> str | None:
    """PostgreSQL's text form of a one-dimensional array of text, numbers or NULLs
    (``{"a","b\\"c",NULL}``), or None for other elements. psycopg adapts a list by looking at
    its elements on every call (about 50 microseconds of CPU for 20 of them, twice the cost of
    the rest of a short read); a string goes as it is, and the statement's cast
    (``%(ids)s::BIGINT[]``, as :func:`array_rows` renders) gives its type."""
    if set(map(type, values)) <= {int}:  # ids and levels, the usual case: nothing to quote
        return "{" + ",".join(map(str, values)) + "}"
    cells = []
    for value in values:
        if value is None:
            cells.append("NULL")
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            return None
        else:
            cells.append('"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(cells) + "}"


def driver_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters for psycopg: each list of text or numbers as :func:`array_literal`."""
    for name, value in params.items():
        if isinstance(value, list):
            literal = array_literal(value)
            if literal is not None:
                params[name] = literal
    return params


def array_rows(name: str, *columns: tuple[str, Any]) -> Any:
    """PostgreSQL: a derived table ``name`` of the rows of array parameters zipped by
    ``unnest``, one per column (``(column, element type)``), bound as the column's name plus
    ``s`` (``id`` -> ``ids``). A statement that takes a list this way has one text whatever the
    list's length: compiled once, and prepared by psycopg, where an IN list or a CASE is a new
    text per length that psycopg parses on every call."""
    arrays = [bindparam(f"{column}s", type_=postgresql.ARRAY(kind)) for column, kind in columns]
    return (
        func.unnest(*arrays)
        .table_valued(*(sql_column(column, kind) for column, kind in columns))
        .render_derived(name=name)
    )


def _json_dumps(value: Any) -> str:
    """JSON for JSON/JSONB columns (orjson: the label document is written on every ingest)."""
    return orjson.dumps(value).decode()


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the bundled migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    cfg.attributes["database_url"] = url
    return cfg


def upgrade(url: str, revision: str = "head", *, prepared_statements: bool = True) -> None:
    """Migrate to ``revision``, on a connection of an engine made as the server's would be
    (``prepared_statements`` as in :func:`make_engine`)."""
    engine = make_engine(url, prepared_statements=prepared_statements)
    try:
        with engine.connect() as connection:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
