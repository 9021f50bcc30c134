"""The demo seed: real signed labels through the ingest path, grades A to E, tokens on rerun."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from registry.db import make_engine, upgrade
from registry.demo import seed
from registry.services.vendors import authenticate


def test_seed_then_reseed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    first = seed(engine, "http://127.0.0.1:8000")
    with engine.connect() as conn:
        grades = set(conn.execute(text("SELECT DISTINCT grade FROM labels")).scalars())
        labels = conn.execute(text("SELECT count(*) FROM labels")).scalar_one()
    assert grades == {"A", "B", "C", "D", "E"}
    assert labels == 20
    with engine.connect() as conn:
        tiers = {
            row.tier: row.n
            for row in conn.execute(text("SELECT tier, count(*) AS n FROM labels GROUP BY tier"))
        }
        agreements = sorted(conn.execute(text("SELECT agrees FROM attestations")).scalars())
        kinds = list(conn.execute(text("SELECT kind FROM log_entries ORDER BY idx")).scalars())
    assert tiers == {"verified": 2, "self-reported": 18}
    assert [bool(a) for a in agreements] == [False, True, True]
    assert kinds.count("label") == 20
    assert kinds.count("key-add") == 3
    assert kinds[-4:] == ["auditor-add", "audit", "audit", "audit"]
    again = seed(engine, "http://127.0.0.1:8000")
    assert [v.slug for v in again] == [v.slug for v in first]
    assert {v.token for v in again}.isdisjoint({v.token for v in first})
    from sqlmodel import Session

    with Session(engine) as session:
        vendor = authenticate(session, again[0].token)
        assert vendor is not None
        assert vendor.slug == again[0].slug
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM labels")).scalar_one() == 20
    engine.dispose()
