"""Reads on the driver's connection (``registry.db``: ``read_row``, ``first_row``,
``read_mappings``): the same answers as SQLAlchemy's on both databases, errors as DBAPIErrors,
and the pool's connections left as found. Runs on SQLite, and on PostgreSQL with
CARBONLABEL_TEST_DATABASE_URL set (where the driver's path is taken)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import BigInteger, Engine, String, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from registry import http_cache
from registry.api import badge_facts
from registry.db import (
    array_literal,
    array_rows,
    driver_params,
    driver_sql,
    first_row,
    make_engine,
    read_mappings,
    read_row,
)
from registry.errors import ProblemError
from registry.http_cache import DataVersion
from registry.models import Label, Vendor, VendorStanding
from registry.services import briefs, label_list, queries, ranking, ranking_stored, translog
from tests.helpers import Publisher


@pytest.fixture
def labelled(client: TestClient, publisher: Publisher) -> Publisher:
    answer = client.post(
        "/v1/labels", content=publisher.envelope(model="model-a"), headers=publisher.headers
    )
    assert answer.status_code == 201, answer.text
    return publisher


def test_the_version_read_on_the_driver_connection(db: Engine) -> None:
    """``read_row`` (the head's read on every request) reads the head as SQLAlchemy does, turns a
    driver error into a DBAPIError, and leaves the pool's connection as it found it: the next
    transaction through SQLAlchemy is a real one (not left in autocommit)."""
    with db.connect() as connection:
        expected = translog.head(connection)
    assert http_cache.read_data_version(db) == DataVersion(expected.tree_size, expected.root_hash)
    with pytest.raises(DBAPIError):
        read_row(db, "SELECT no_such_column FROM log_head")
    assert read_row(db, translog.HEAD_SQL) == (expected.tree_size, expected.root_hash)
    with db.connect() as connection:
        connection.execute(text("UPDATE log_head SET tree_size = tree_size + 1"))
        connection.rollback()  # a transaction: undone
    assert http_cache.read_data_version(db).tree_size == expected.tree_size


@pytest.mark.postgres
def test_a_lost_connection_in_the_version_read_is_dropped_from_the_pool(
    postgres_url: str,
) -> None:
    """The server ends the pooled connection: that read fails as a DBAPIError, the connection
    leaves the pool, and the next read gets a new one."""
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        read_row(engine, translog.HEAD_SQL)
        (pid,) = read_row(engine, "SELECT pg_backend_pid()") or ()
        with make_engine(postgres_url).connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError):
            read_row(engine, translog.HEAD_SQL)
        assert read_row(engine, translog.HEAD_SQL) is not None
        assert read_row(engine, "SELECT pg_backend_pid()") != (pid,)
    finally:
        engine.dispose()


def test_first_row_on_the_driver_matches_sqlalchemy(labelled: Publisher, db: Engine) -> None:
    """``first_row`` (the badges' reads; on the driver's connection on PostgreSQL) answers as
    SQLAlchemy does, with the statement's constants (an enumeration's value, a LIMIT) bound; a
    statement whose constant SQLAlchemy must convert (a JSON path) goes through SQLAlchemy."""
    plain = badge_facts._model_badge_statement(False, False, False, False)
    embodied = badge_facts._model_badge_statement(False, False, False, True)
    params = {"vendor": "acme", "model": "model-a", "task": None, "phase": None, "suite": None}
    for statement in (plain, embodied):
        with db.connect() as connection:
            expected = tuple(connection.execute(statement, params).one())
        assert tuple(first_row(db, statement, params)) == expected
        assert first_row(db, statement, params | {"model": "no-such-model"}) is None
    if db.dialect.name == "postgresql":
        sql, constants = driver_sql(plain, db.dialect) or ("", {})
        assert "%(vendor)s" in sql
        assert constants == {"standing_1": "ok", "kind_1": "benchmark", "param_1": 1}
        assert driver_sql(embodied, db.dialect) is None  # its JSON path: through SQLAlchemy


def test_read_mappings_on_the_driver_match_sqlalchemy(labelled: Publisher, db: Engine) -> None:
    """``read_mappings`` (the ranking's reads) gives SQLAlchemy's mappings, in the connection's
    transaction; an expanding IN list goes through SQLAlchemy; an error is a DBAPIError."""
    statements = ranking_stored.stored_statements()
    group = {"suite": "1", "task": "text-classification", "phase": "inference"}
    params = group | {"hardware_class": "*", "size_class": "*", "n": 10}
    with db.connect() as connection:
        expected = [dict(r) for r in connection.execute(statements["first"], params).mappings()]
        assert expected  # the label's vendor ranks
        assert [dict(r) for r in read_mappings(connection, statements["first"], params)] == expected
        chosen = params | {"slugs": ["acme", "nobody"]}
        assert [dict(r) for r in read_mappings(connection, statements["chosen"], chosen)] == [
            dict(r) for r in connection.execute(statements["chosen"], chosen).mappings()
        ]
        probes, probe = ranking._default_suite_probes("text-classification", "inference")
        (found,) = read_mappings(connection, probe, {})
        assert len(found) == len(probes)
        # in the connection's transaction: a row it wrote and has not committed is read
        if db.dialect.name == "postgresql":
            connection.execute(
                text("UPDATE vendors SET display_name = 'Renamed' WHERE slug = 'acme'")
            )
            by_slug = select(Vendor.display_name).where(Vendor.slug == "acme")  # type: ignore[arg-type]
            assert read_mappings(connection, by_slug, {})[0]["display_name"] == "Renamed"
            connection.rollback()
            assert driver_sql(statements["chosen"], db.dialect) is None  # IN list: SQLAlchemy
        with pytest.raises(DBAPIError):
            read_mappings(
                connection, select(text("no_such_column")).select_from(VendorStanding), {}
            )


def test_array_parameters_go_as_postgresql_array_text() -> None:
    """``driver_params`` turns a list of text or numbers into PostgreSQL's array text (quotes
    and backslashes escaped, None as NULL) and leaves anything else to psycopg."""
    assert (
        array_literal(["a", 'b"c', "d\\e", None, 3, 1.5]) == '{"a","b\\"c","d\\\\e",NULL,"3","1.5"}'
    )
    assert array_literal([]) == "{}"
    assert array_literal([3, -1, 10]) == "{3,-1,10}"  # integers only: nothing quoted
    assert array_literal([True]) is None
    assert array_literal([1, True]) is None
    assert array_literal([b"x"]) is None
    params = driver_params({"ids": [1, 2], "flags": [True], "one": "x", "pair": (1, 2)})
    assert params == {"ids": "{1,2}", "flags": [True], "one": "x", "pair": (1, 2)}


@pytest.mark.postgres
def test_array_text_reads_back_the_same_values(postgres_url: str) -> None:
    """Every awkward string (quotes, backslashes, commas, braces, spaces, "NULL", unicode),
    numbers and NULLs come back from ``unnest`` on PostgreSQL exactly as they were sent."""
    words = ['a"b', "c\\d", "e,f", "{g}", " h ", "NULL", "", "ü €", '\\"', None]
    ids = list(range(-2, len(words) - 2))
    pairs = array_rows("given", ("word", String), ("id", BigInteger))
    statement = select(pairs.c.word, pairs.c.id)
    assert driver_sql(statement, make_engine(postgres_url).dialect) is not None
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            rows = read_mappings(connection, statement, {"words": words, "ids": ids})
    finally:
        engine.dispose()
    assert [(r["word"], r["id"]) for r in rows] == list(zip(words, ids, strict=True))


def test_the_label_list_is_one_driver_read_per_shape(labelled: Publisher, db: Engine) -> None:
    """The list's statement is built once per shape (its values are parameters) and, on
    PostgreSQL, goes to the driver; it reads the stored ``brief`` (the listed parts, as
    ``brief_of`` takes them from the document) and never the document."""
    shape = ("task", "current")
    statement = label_list._statement(db.dialect.name, shape, "energy")
    assert label_list._statement(db.dialect.name, shape, "energy") is statement
    assert "predicate" not in str(statement)
    if db.dialect.name == "postgresql":
        assert driver_sql(statement, db.dialect) is not None
    with Session(db) as session:
        (stored,) = session.exec(sqlmodel_select(Label)).all()
        assert stored.brief == briefs.brief_of(stored.predicate)
        assert stored.brief["results"]["energy_per_unit_wh"]["ci95_low"] > 0
        assert "traces" in stored.predicate
        assert "traces" not in stored.brief
        page, _ = label_list.list_labels(
            session,
            filters=label_list.LabelFilters(task=stored.task),
            sort="energy",
            limit=5,
            cursor=None,
        )
    assert [label.predicate for label, _, _ in page] == [stored.brief]


def test_the_label_list_by_model_id_and_its_names(
    labelled: Publisher, client: TestClient, db: Engine
) -> None:
    """A list filtered by a model's row id holds that model's labels and no other's, as the
    filter by its vendor and name does, with the vendor's slug and the model's name of each."""
    for model in ("model-b", "model-a"):
        answer = client.post(
            "/v1/labels", content=labelled.envelope(model=model), headers=labelled.headers
        )
        assert answer.status_code == 201, answer.text

    def listed(filters: label_list.LabelFilters) -> list[tuple[str, str, str]]:
        with Session(db) as session:
            page, _ = label_list.list_labels(
                session, filters=filters, sort="energy", limit=50, cursor=None
            )
        return [(label.id, vendor, model) for label, vendor, model in page]

    with Session(db) as session:
        model_id = {
            label.model_name: label.model_id for label in session.exec(sqlmodel_select(Label))
        }
    by_id = listed(label_list.LabelFilters(model_id=model_id["model-a"]))
    by_name = listed(label_list.LabelFilters(vendor="acme", model="acme/model-a"))
    assert len(by_id) == 2
    assert by_id == by_name
    assert {(vendor, model) for _, vendor, model in by_id} == {("acme", "model-a")}
    assert listed(label_list.LabelFilters(model_id=model_id["model-b"]))[0][1:] == (
        "acme",
        "model-b",
    )


def test_stored_labels_read_plain_match_the_orm(labelled: Publisher, db: Engine) -> None:
    """The label route's and the model page's stored labels (plain objects from a Core read, on
    the driver on PostgreSQL) carry every column as the ORM's label does; the model page's come
    without their envelope; an unknown id is a not-found."""
    with Session(db) as session:
        (orm,) = session.exec(sqlmodel_select(Label)).all()
        label, vendor, model, key_status, attested, logged = queries.get_label_with_key(
            session, orm.id.upper()
        )
        for column in Label.__table__.c:  # type: ignore[attr-defined]
            assert getattr(label, column.name) == getattr(orm, column.name), column.name
        assert (vendor, model, key_status, attested) == ("acme", "model-a", "active", False)
        # what its receipt needs came with it: its entry's leaf hash and the log's head
        head = translog.head(session.connection())
        assert logged is not None
        leaf_hash, tree_size, root_hash = logged
        assert (int(tree_size), bytes(root_hash)) == (head.tree_size, head.root_hash)
        assert orm.log_index is not None
        entry = translog.entry(session.connection(), orm.log_index)
        assert bytes(leaf_hash) == entry.leaf_hash
        (page_label, page_status, page_attested) = queries.labels_with_key(
            session, [orm.id, "no-such-label"]
        )[orm.id]
        assert (page_label.predicate, page_status, page_attested) == (
            orm.predicate,
            "active",
            False,
        )
        with pytest.raises(AttributeError):
            page_label.envelope  # noqa: B018
        with pytest.raises(ProblemError):
            queries.get_label_with_key(session, "00000000-0000-4000-8000-000000000000")
