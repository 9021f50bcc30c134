"""The demo seed: real signed labels through the ingest path, grades A to E, suite-2 labels with
quality in every model-size class, chat-serving labels with several levels, tokens on rerun."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from registry.api.badge_facts import model_badge_facts
from registry.db import make_engine, upgrade
from registry.demo import seed
from registry.services.vendors import authenticate


def test_seed_then_reseed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    first = seed(engine, "http://127.0.0.1:8000")
    with engine.connect() as conn:
        grades = set(
            conn.execute(
                text("SELECT DISTINCT grade FROM labels WHERE kind = 'benchmark'")
            ).scalars()
        )
        labels = conn.execute(
            text("SELECT count(*) FROM labels WHERE kind = 'benchmark'")
        ).scalar_one()
        kinds = dict(conn.execute(text("SELECT kind, count(*) FROM labels GROUP BY kind")).all())
        flagged = conn.execute(
            text(
                "SELECT count(*) FROM labels WHERE kind = 'operational' AND (current OR grade IS NOT NULL)"
            )
        ).scalar_one()
    assert grades == {"A", "B", "C", "D", "E"}
    # 10 suite-1 models, 11 suite-2 models and 3 chat-serving servers, two revisions each
    assert labels == 48
    # and production since its newest revision for each chat-serving server: an operational
    # label every 12 hours, 19 of them
    assert kinds == {"benchmark": 48, "operational": 3 * 19}
    assert flagged == 0
    with engine.connect() as conn:
        suite_2 = conn.execute(
            text(
                "SELECT task, size_class, quality, quality_metric, energy_per_output_token_j"
                " FROM labels WHERE suite = '2' AND current AND task != 'chat-serving'"
            )
        ).all()
        suite_1_quality = conn.execute(
            text("SELECT count(*) FROM labels WHERE suite = '1' AND quality IS NOT NULL")
        ).scalar_one()
        declared = conn.execute(
            text(
                "SELECT count(*) FROM labels WHERE suite = '2' AND task != 'chat-serving'"
                " AND predicate LIKE :pattern"
            ),
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
        serving = conn.execute(
            text(
                "SELECT predicate, grade, size_class, energy_per_output_token_j FROM labels"
                " WHERE task = 'chat-serving' AND current"
            )
        ).all()
    assert len(serving) == 3
    assert {r.size_class for r in serving} == {"up-to-20b", "up-to-66b", "over-66b"}
    assert all(r.grade is not None and r.energy_per_output_token_j > 0 for r in serving)
    engines = set()
    for row in serving:
        predicate = json.loads(row.predicate) if isinstance(row.predicate, str) else row.predicate
        levels = predicate["results"]["serving"]["levels"]
        assert [level["concurrency"] for level in levels] == [1, 8, 32]
        per_request = [level["energy_per_unit_wh"]["mean"] for level in levels]
        ttft = [level["ttft_s"]["p50"] for level in levels]
        assert per_request == sorted(per_request, reverse=True)  # sharing the GPUs saves energy
        assert ttft == sorted(ttft)  # and each request waits longer
        server = predicate["benchmark"]["workload"]["serving"]["engine"]
        engines.add((server["name"], server["source"], len(predicate["hardware"].get("nodes", []))))
        assert "unvalidated-bias" in predicate["measurement"]["flags"]
    # a served model's badge still shows its text-generation label (received after)
    facts = model_badge_facts(engine, "northwind-ai", "nw-chat-8b", None, None)
    assert facts is not None
    assert facts.quality_metric == "gsm8k-exact-match"
    assert engines == {
        ("vllm", "server", 0),
        ("text-generation-inference", "declared", 0),
        ("vllm", "server", 2),
    }
    with engine.connect() as conn:
        tiers = {
            row.tier: row.n
            for row in conn.execute(
                text(
                    "SELECT tier, count(*) AS n FROM labels WHERE kind = 'benchmark' GROUP BY tier"
                )
            )
        }
        agreements = sorted(conn.execute(text("SELECT agrees FROM attestations")).scalars())
        kinds = list(conn.execute(text("SELECT kind FROM log_entries ORDER BY idx")).scalars())
    assert tiers == {"verified": 2, "self-reported": 46}
    assert [bool(a) for a in agreements] == [False, True, True]
    assert kinds.count("label") == 48 + 3 * 19  # every kind of label is logged
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
        # the tokens printed on the earlier start stop working
        assert all(authenticate(session, v.token) is None for v in first)
    with engine.connect() as conn:
        # every key was registered (and its vendor created) before the labels it signed
        late = conn.execute(
            text(
                "SELECT count(*) FROM labels l JOIN public_keys k ON k.keyid = l.keyid"
                " JOIN vendors v ON v.id = l.vendor_id"
                " WHERE l.created_at < k.created_at OR l.created_at < v.created_at"
            )
        ).scalar_one()
    assert late == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM labels")).scalar_one() == 48 + 3 * 19
    engine.dispose()
