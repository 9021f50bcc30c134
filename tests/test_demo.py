"""The demo seed: real signed labels through the ingest path, grades A to E, suite-2 labels with
quality in every model-size class, tokens on rerun."""

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
    assert labels == 42  # 10 suite-1 and 11 suite-2 models, two revisions each
    with engine.connect() as conn:
        suite_2 = conn.execute(
            text(
                "SELECT task, size_class, quality, quality_metric, energy_per_output_token_j"
                " FROM labels WHERE suite = '2' AND current"
            )
        ).all()
        suite_1_quality = conn.execute(
            text("SELECT count(*) FROM labels WHERE suite = '1' AND quality IS NOT NULL")
        ).scalar_one()
        declared = conn.execute(
            text("SELECT count(*) FROM labels WHERE suite = '2' AND predicate LIKE :pattern"),
            {"pattern": '%"declared"%'},
        ).scalar_one()
    assert len(suite_2) == 11
    generation = [r for r in suite_2 if r.task == "text-generation"]
    assert {r.size_class for r in generation} == {"up-to-20b", "up-to-66b", "over-66b"}
    assert all(r.quality_metric == "gsm8k-exact-match" and 0 < r.quality < 1 for r in generation)
    assert all(r.energy_per_output_token_j > 0 for r in generation)
    classification = [r for r in suite_2 if r.task == "text-classification"]
    assert sorted(r.quality is None for r in classification) == [False, False, True]
    assert [r.quality for r in suite_2 if r.task == "image-classification"] == [None]
    assert suite_1_quality == 0
    assert declared == 2  # nw-chat-8b v1 and v2
    with engine.connect() as conn:
        tiers = {
            row.tier: row.n
            for row in conn.execute(text("SELECT tier, count(*) AS n FROM labels GROUP BY tier"))
        }
        agreements = sorted(conn.execute(text("SELECT agrees FROM attestations")).scalars())
        kinds = list(conn.execute(text("SELECT kind FROM log_entries ORDER BY idx")).scalars())
    assert tiers == {"verified": 2, "self-reported": 40}
    assert [bool(a) for a in agreements] == [False, True, True]
    assert kinds.count("label") == 42
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
        assert conn.execute(text("SELECT count(*) FROM labels")).scalar_one() == 42
    engine.dispose()
