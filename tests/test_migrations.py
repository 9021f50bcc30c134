"""Alembic owns the schema: models and migrations agree; readiness follows the migration state."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import registry.models  # noqa: F401
from registry.config import Settings
from registry.db import head_revision, make_engine, upgrade
from registry.main import create_app
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
    assert rows["l-new"].graded_under == "1"


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
