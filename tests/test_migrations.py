"""Alembic owns the schema: models and migrations agree; readiness follows the migration state."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import registry.models  # noqa: F401
from alembic import command
from registry.config import Settings
from registry.db import alembic_config, head_revision, make_engine, upgrade
from registry.main import create_app
from schemas.contract import load_methodology
from tests.helpers import ADMIN_TOKEN, LOG_KEY_B64


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_predicate_column_is_jsonb_on_postgresql(engine: Engine) -> None:
    columns = {c["name"]: c for c in inspect(engine).get_columns("labels")}
    kind = type(columns["predicate"]["type"]).__name__
    assert kind == ("JSONB" if engine.dialect.name == "postgresql" else "JSON")


def test_the_app_never_creates_tables(project_root: Path) -> None:
    for path in (project_root / "registry").rglob("*.py"):
        assert "create_all" not in path.read_text(), path


def test_readyz_reports_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN, log_signing_key=LOG_KEY_B64)
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["type"].endswith("not-ready")
        assert "db upgrade" in response.json()["detail"]
        upgrade(url)
        assert client.get("/readyz").status_code == 200


def test_readyz_reports_an_unreachable_database(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN, log_signing_key=LOG_KEY_B64)
    engine = make_engine(url, pool_pre_ping=False)
    with TestClient(create_app(settings, engine=engine)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "unreachable" in response.json()["detail"]
    assert head_revision(url) is not None


def test_0002_grades_existing_labels_and_marks_current(tmp_path: Path) -> None:
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vendors (id, slug, display_name, created_at) VALUES (1, 'a', 'a', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO models (id, vendor_id, name, created_at) VALUES (1, 1, 'm', '2026-01-01')"
            )
        )
        for label_id, created, ci_high in (
            ("l-old", "2026-01-01", 0.1),
            ("l-new", "2026-02-01", 3.0),
        ):
            conn.execute(
                text(
                    "INSERT INTO labels (id, vendor_id, model_id, revision, task, phase, hardware_class, zone,"
                    " functional_unit, measured, energy_per_unit_wh, energy_ci95_high_wh, co2e_per_unit_g,"
                    " created_at, received_at, keyid, payload_sha256, envelope, predicate) VALUES (:id, 1, 1,"
                    " 'v1', 'text-classification', 'inference', 'nvidia-l4-24gb', 'FR', '1k-inferences', 1,"
                    " :ci, :ci, 0.1, :created, :created, 'k', 's', X'00', '{}')"
                ),
                {"id": label_id, "ci": ci_high, "created": created},
            )
    upgrade(url)
    with engine.connect() as conn:
        rows = {
            r.id: r
            for r in conn.execute(text("SELECT id, grade, graded_under, current FROM labels"))
        }
    engine.dispose()
    assert (rows["l-old"].grade, bool(rows["l-old"].current)) == ("A", False)
    assert (rows["l-new"].grade, bool(rows["l-new"].current)) == ("E", True)
    # graded under the methodology shipped now (grading 1.1: the bands of 1, the basis widened
    # by the meter bias bound)
    assert rows["l-new"].graded_under == load_methodology()["grades"]["grading_version"] == "1.1"


def test_0004_logs_existing_keys_and_labels_and_withdraws_standing(tmp_path: Path) -> None:
    from sqlalchemy import text

    from schemas import merkle
    from schemas.tlog import decode_leaf

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vendors (id, slug, display_name, created_at) VALUES (1, 'a', 'a', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO models (id, vendor_id, name, created_at) VALUES (1, 1, 'm', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO public_keys (id, vendor_id, keyid, public_key_b64, status, created_at,"
                " revoked_at, compromised_since) VALUES (1, 1, 'k', 'cHVi', 'compromised',"
                " '2026-01-01 00:00:00', '2026-03-01 00:00:00', '2026-02-15 00:00:00')"
            )
        )
        for label_id, received in (("l-old", "2026-02-01"), ("l-new", "2026-03-01")):
            conn.execute(
                text(
                    "INSERT INTO labels (id, vendor_id, model_id, revision, task, phase, hardware_class, zone,"
                    " functional_unit, measured, energy_per_unit_wh, energy_ci95_high_wh, co2e_per_unit_g,"
                    " created_at, received_at, keyid, payload_sha256, envelope, predicate, grade, graded_under,"
                    " current) VALUES (:id, 1, 1, 'v1', 'text-classification', 'inference', 'nvidia-l4-24gb',"
                    " 'FR', '1k-inferences', 1, 1.0, 1.0, 0.1, :at, :at, 'k', 's', X'00', '{}', 'C', '1', 1)"
                ),
                {"id": label_id, "at": received},
            )
    upgrade(url)
    with engine.connect() as conn:
        entries = conn.execute(text("SELECT idx, leaf FROM log_entries ORDER BY idx")).all()
        head = conn.execute(text("SELECT tree_size, root_hash FROM log_head")).one()
        labels = {r.id: r for r in conn.execute(text("SELECT id, log_index, standing FROM labels"))}
    engine.dispose()
    kinds = [decode_leaf(bytes(e.leaf))["kind"] for e in entries]
    assert kinds == ["key-add", "label", "label", "key-revoke"]  # same instant: label first
    assert head.tree_size == 4
    leaf_hashes = [merkle.leaf_hash(bytes(e.leaf)) for e in entries]
    assert bytes(head.root_hash) == merkle.root_of_leaves(leaf_hashes)
    assert (labels["l-old"].log_index, labels["l-old"].standing) == (1, "ok")
    assert (labels["l-new"].log_index, labels["l-new"].standing) == (2, "key-compromised")


@pytest.fixture
def scratch_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the lane's kind for migrating by hand: a SQLite file, or on
    PostgreSQL a schema of its own in the test database (first on the search path)."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    schema = f"scratch_{uuid.uuid4().hex[:12]}"
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


LABEL_0005 = (
    "INSERT INTO labels (id, vendor_id, model_id, revision, task, phase, hardware_class, zone,"
    " functional_unit, measured, energy_per_unit_wh, energy_ci95_high_wh, co2e_per_unit_g,"
    " created_at, received_at, keyid, payload_sha256, envelope, predicate, grade, graded_under,"
    " current, standing, tier) VALUES (:id, 1, :model, 'v1', :task, 'inference', :hw, 'FR', :unit,"
    " :measured, :mean, :ci, 0.1, :created, :created, 'k', 's', :envelope, :predicate, :grade,"
    " :graded_under, :current, 'ok', 'self-reported')"
)


def _store_at_0005(conn: Connection, label_id: str, model_id: int, label: dict[str, Any]) -> None:
    from schemas.grading import grade_for

    energy = label["results"]["energy_per_unit_wh"]
    grade = grade_for(
        task=label["benchmark"]["task"],
        phase="inference",
        hardware_class=label["hardware"]["hardware_class"],
        energy_ci95_high_wh=energy["ci95_high"],
        measured=True,
    )
    conn.execute(
        text(LABEL_0005),
        {
            "id": label_id,
            "model": model_id,
            "task": label["benchmark"]["task"],
            "hw": label["hardware"]["hardware_class"],
            "unit": label["results"]["functional_unit"],
            "measured": True,
            "mean": energy["mean"],
            "ci": energy["ci95_high"],
            "created": datetime.fromisoformat(label["created_at"]),
            "envelope": b"{}",
            "predicate": json.dumps(label),
            "grade": grade,
            "graded_under": "1" if grade else None,
            "current": False,
        },
    )


def _labels_table(url: str) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Every label row by id, and the labels table's indexes (name: columns)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = {r.id: r._asdict() for r in conn.execute(text("SELECT * FROM labels"))}
        indexes = {
            str(i["name"]): [str(c) for c in i["column_names"]]
            for i in inspect(engine).get_indexes("labels")
        }
    finally:
        engine.dispose()
    return rows, indexes


def test_0006_upgrades_suite_1_labels_backfills_and_round_trips(scratch_url: str) -> None:
    """Suite-1 labels stay graded (under "1") and current; a stored label whose JSON is of
    suite 2 gets its columns, its v2 grade and its own current flag from the backfill; the
    downgrade restores 0005's columns, indexes and current flags, and upgrading again gives the
    same table."""
    from schemas.synthetic import make_label

    upgrade(scratch_url, "0005")
    engine = make_engine(scratch_url)
    common = {"vendor": "a", "registry": "http://testserver", "task": "text-generation"}
    older = make_label(model="m", seed=1, created_at=datetime(2026, 1, 1, tzinfo=UTC), **common)
    other = make_label(model="n", seed=2, created_at=datetime(2026, 1, 2, tzinfo=UTC), **common)
    newer_suite_2 = make_label(
        model="m",
        seed=3,
        created_at=datetime(2026, 2, 1, tzinfo=UTC),
        suite="2",
        parameter_count=7_000_000_000,
        units_per_trial=9,
        **common,
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vendors (id, slug, display_name, created_at) VALUES (1, 'a', 'a', :at)"
            ),
            {"at": datetime(2026, 1, 1, tzinfo=UTC)},
        )
        for model_id, name in ((1, "m"), (2, "n")):
            conn.execute(
                text(
                    "INSERT INTO models (id, vendor_id, name, created_at)"
                    " VALUES (:id, 1, :name, :at)"
                ),
                {"id": model_id, "name": name, "at": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        _store_at_0005(conn, "l-old", 1, older)
        _store_at_0005(conn, "l-other", 2, other)
        _store_at_0005(conn, "l-suite-2", 1, newer_suite_2)
        # 0005's current flags: one per (model, task, phase, hardware class)
        conn.execute(text("UPDATE labels SET current = (id <> 'l-old')"))
    engine.dispose()
    before, indexes_0005 = _labels_table(scratch_url)

    upgrade(scratch_url, "0006")
    after, indexes = _labels_table(scratch_url)
    for label_id in ("l-old", "l-other"):
        row = after[label_id]
        assert (row["suite"], row["size_class"]) == ("1", "")
        assert (row["quality"], row["quality_metric"], row["energy_per_output_token_j"]) == (
            None,
            None,
            None,
        )
        assert (row["grade"], row["graded_under"]) == (
            before[label_id]["grade"],
            before[label_id]["graded_under"],
        )
        assert row["graded_under"] == "1"
    # the suite-1 label of m is current again: m's suite-2 label is in another group now
    assert bool(after["l-old"]["current"])
    assert bool(after["l-other"]["current"])
    suite_2 = after["l-suite-2"]
    assert bool(suite_2["current"])
    assert (suite_2["suite"], suite_2["size_class"]) == ("2", "up-to-20b")
    measured = newer_suite_2["quality"]["measured"]
    assert (suite_2["quality"], suite_2["quality_metric"]) == (
        measured["value"],
        measured["metric"],
    )
    assert suite_2["energy_per_output_token_j"] == pytest.approx(
        newer_suite_2["results"]["energy_per_output_token_j"]["mean"], rel=1e-12
    )
    # the v2 bands, <= 20B, on the CI bound widened by the H100 class's meter bias bound
    assert (suite_2["grade"], suite_2["graded_under"]) == ("C", "2")
    assert indexes["ix_labels_model_current"] == [
        "model_id",
        "suite",
        "task",
        "phase",
        "hardware_class",
    ]
    assert "suite" in indexes["ix_labels_current_peers"]
    assert "size_class" in indexes["ix_labels_current_peers"]
    assert indexes["ix_labels_vendor_ranking"][:4] == ["task", "phase", "suite", "current"]
    assert {"size_class", "quality"} <= set(indexes["ix_labels_vendor_ranking"])

    command.downgrade(alembic_config(scratch_url), "0005")
    down, indexes_down = _labels_table(scratch_url)
    assert indexes_down == indexes_0005
    assert not {"suite", "size_class", "quality", "quality_metric"} & set(down["l-old"])
    assert {i: bool(r["current"]) for i, r in down.items()} == {
        "l-old": False,
        "l-other": True,
        "l-suite-2": True,
    }

    upgrade(scratch_url, "0006")
    again, indexes_again = _labels_table(scratch_url)
    assert indexes_again == indexes
    assert again == after
    upgrade(scratch_url)
    engine = make_engine(scratch_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_0010_fills_each_labels_brief_from_its_document(scratch_url: str) -> None:
    """The demo's labels (suite 1 and 2, quality figures, chat-serving) are stored with their
    listed parts; 0010's fill, from 0009 again, writes the same ``brief`` for each of them (in
    SQL on PostgreSQL, in batches on SQLite) as ``briefs.brief_of`` did at ingest."""
    from registry.demo import seed
    from registry.services.briefs import brief_of
    from tests.helpers import AUDIENCE

    upgrade(scratch_url)
    engine = make_engine(scratch_url)
    try:
        seed(engine, AUDIENCE)

        def briefs() -> dict[str, Any]:
            with engine.connect() as conn:
                found = conn.execute(text("SELECT id, brief FROM labels")).all()
            return {i: b if isinstance(b, dict) else json.loads(b) for i, b in found}

        with engine.connect() as conn:
            documents = conn.execute(text("SELECT id, predicate FROM labels")).all()
        expected = {
            label_id: brief_of(doc if isinstance(doc, dict) else json.loads(doc))
            for label_id, doc in documents
        }
        stored = briefs()
        assert stored == expected
        assert any("quality" in b for b in stored.values())
        assert any("serving" in b.get("results", {}) for b in stored.values())
        assert any("benchmark" in b for b in stored.values())
        assert all(b["results"]["energy_per_unit_wh"]["ci95_low"] >= 0 for b in stored.values())
        engine.dispose()
        command.downgrade(alembic_config(scratch_url), "0009")
        assert "brief" not in {c["name"] for c in inspect(engine).get_columns("labels")}
        engine.dispose()
        upgrade(scratch_url)
        assert briefs() == expected
    finally:
        engine.dispose()
