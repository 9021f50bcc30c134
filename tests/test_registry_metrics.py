"""The registry's /metrics: submissions by outcome, labels by kind and tier, cache look-ups, the
log's size and checkpoint age, parsed with prometheus_client's own parser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, text

from registry.config import Settings
from registry.main import create_app
from registry.metrics import DatabaseCollector, submission_outcome
from registry.services.stats import RegistryStats, read_stats
from tests.helpers import Publisher, envelope_bytes, register_publisher

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> tuple[dict[str, str], Samples]:
    """The families' types by name, and every sample by (name, sorted labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def fresh_client(db: Engine, settings: Settings) -> Iterator[TestClient]:
    """A client whose registry-wide gauges are read at every scrape (no TTL)."""
    uncached = settings.model_copy(update={"metrics_cache_ttl_s": 0.0})
    with TestClient(create_app(uncached, engine=db), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def acme(fresh_client: TestClient) -> Publisher:
    return register_publisher(fresh_client, "acme")


def submit(client: TestClient, publisher: Publisher, body: bytes) -> int:
    return client.post("/v1/labels", content=body, headers=publisher.headers).status_code


def test_submissions_are_counted_by_outcome(fresh_client: TestClient, acme: Publisher) -> None:
    client = fresh_client
    _, before = scrape(client)
    assert value(before, "carbonlabel_label_submissions_total", outcome="created") == 0
    assert value(before, "carbonlabel_label_submissions_total", outcome="duplicate") == 0
    envelope = acme.envelope()
    assert submit(client, acme, envelope) == 201
    assert submit(client, acme, envelope) == 200
    violating = acme.label()
    del violating["carbon"]["pue"]
    assert submit(client, acme, envelope_bytes(violating, acme.key)) == 422
    # refused before the route runs: the token, then the body limit
    assert client.post("/v1/labels", content=envelope).status_code == 401
    bad_token = {"Authorization": "Bearer clt_not-a-token"}
    assert client.post("/v1/labels", content=envelope, headers=bad_token).status_code == 401
    settings = client.app.state.settings  # type: ignore[attr-defined]
    too_large = b"x" * (settings.max_body_bytes + 1)
    assert submit(client, acme, too_large) == 413
    _, samples = scrape(client)
    outcomes = {
        dict(labels)["outcome"]: count
        for (name, labels), count in samples.items()
        if name == "carbonlabel_label_submissions_total"
    }
    assert outcomes == {
        "created": 1,
        "duplicate": 1,
        "schema-violation": 1,
        "unauthorized": 2,
        "payload-too-large": 1,
    }


def test_submission_outcome_reads_the_problem_type() -> None:
    body = b'{"type": "urn:carbonlabel:problem:bad-signature", "status": 422}'
    assert submission_outcome(422, body) == "bad-signature"
    assert submission_outcome(201, b"{}") == "created"
    assert submission_outcome(200, b"{}") == "duplicate"
    # an unknown type or no problem body: the status, so the label's values stay few
    assert submission_outcome(418, b'{"type": "urn:x:teapot"}') == "http-418"
    assert submission_outcome(502, b"<html>") == "http-502"


def test_labels_by_kind_and_tier(fresh_client: TestClient, acme: Publisher, db: Engine) -> None:
    client = fresh_client
    _, empty = scrape(client)
    assert value(empty, "carbonlabel_labels", kind="benchmark", tier="self-reported") == 0
    assert value(empty, "carbonlabel_labels", kind="operational", tier="verified") == 0
    for model in ("m1", "m2", "m3"):
        assert submit(client, acme, acme.envelope(model=model)) == 201
    _, samples = scrape(client)
    assert value(samples, "carbonlabel_labels", kind="benchmark", tier="self-reported") == 3
    assert value(samples, "carbonlabel_labels", kind="benchmark", tier="verified") == 0
    # the gauge groups what is stored, whatever wrote it
    with db.begin() as conn:
        conn.execute(text("UPDATE labels SET tier = 'verified' WHERE model_name = 'm3'"))
    _, samples = scrape(client)
    assert value(samples, "carbonlabel_labels", kind="benchmark", tier="self-reported") == 2
    assert value(samples, "carbonlabel_labels", kind="benchmark", tier="verified") == 1
    total = sum(count for (name, _), count in samples.items() if name == "carbonlabel_labels")
    assert total == 3


def test_log_entries_and_checkpoint_age(fresh_client: TestClient, acme: Publisher) -> None:
    client = fresh_client
    assert submit(client, acme, acme.envelope()) == 201
    _, samples = scrape(client)
    log = client.get("/v1/log").json()
    assert log["tree_size"] >= 2  # the key's registration and the label
    assert value(samples, "carbonlabel_log_entries") == log["tree_size"]
    age = value(samples, "carbonlabel_log_checkpoint_age_seconds")
    assert age is not None
    assert 0 <= age < 60
    assert value(samples, "carbonlabel_metrics_database_up") == 1


def test_badge_cache_lookups(fresh_client: TestClient, acme: Publisher) -> None:
    client = fresh_client
    _, before = scrape(client)
    assert value(before, "carbonlabel_badge_cache_lookups_total", result="hit") == 0
    assert value(before, "carbonlabel_badge_cache_lookups_total", result="miss") == 0
    assert submit(client, acme, acme.envelope()) == 201
    first = client.get("/badge/acme/model-a.svg")
    second = client.get("/badge/acme/model-a.svg")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    _, samples = scrape(client)
    assert value(samples, "carbonlabel_badge_cache_lookups_total", result="miss") == 1
    assert value(samples, "carbonlabel_badge_cache_lookups_total", result="hit") == 1


def test_http_cache_lookups(fresh_client: TestClient, acme: Publisher) -> None:
    client = fresh_client
    assert submit(client, acme, acme.envelope()) == 201
    first = client.get("/v1/labels")
    client.get("/v1/labels")
    revalidated = client.get("/v1/labels", headers={"If-None-Match": first.headers["etag"]})
    assert revalidated.status_code == 304
    _, samples = scrape(client)
    assert value(samples, "carbonlabel_http_cache_lookups_total", result="miss") == 1
    assert value(samples, "carbonlabel_http_cache_lookups_total", result="hit") == 1
    assert value(samples, "carbonlabel_http_cache_lookups_total", result="not-modified") == 1


def test_gauges_are_cached_for_the_ttl(client: TestClient, publisher: Publisher) -> None:
    """The default client's settings keep the gauges 30 s: a label stored meanwhile shows
    only after the TTL."""
    assert client.app.state.settings.metrics_cache_ttl_s == 30  # type: ignore[attr-defined]
    _, before = scrape(client)
    assert submit(client, publisher, publisher.envelope()) == 201
    _, cached = scrape(client)
    name, kind = "carbonlabel_labels", {"kind": "benchmark", "tier": "self-reported"}
    assert value(cached, name, **kind) == value(before, name, **kind) == 0


def test_database_collector_ttl_and_failures() -> None:
    now = [100.0]
    reads: list[int] = []
    failing = [False]

    def read() -> RegistryStats:
        reads.append(1)
        if failing[0]:
            raise OSError("database down")
        appended = datetime(2026, 1, 1, tzinfo=UTC)
        return RegistryStats({("benchmark", "verified"): len(reads)}, 7, appended)

    wall = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=42)
    collector = DatabaseCollector(
        read, ttl_s=30, clock=lambda: now[0], wall_clock=lambda: wall.timestamp()
    )
    assert collector.stats() is not None
    assert len(reads) == 1
    now[0] += 29
    assert collector.stats() is not None
    assert len(reads) == 1  # within the TTL: no read
    families = {f.name: f for f in collector.collect()}
    assert families["carbonlabel_log_checkpoint_age_seconds"].samples[0].value == 42
    assert families["carbonlabel_log_entries"].samples[0].value == 7
    now[0] += 1
    failing[0] = True
    families = {f.name: f for f in collector.collect()}
    assert len(reads) == 2
    assert set(families) == {"carbonlabel_metrics_database_up"}
    assert families["carbonlabel_metrics_database_up"].samples[0].value == 0
    now[0] += 10
    collector.collect()
    assert len(reads) == 2  # a failure is kept for the TTL too
    failing[0] = False
    now[0] += 20
    families = {f.name: f for f in collector.collect()}
    assert families["carbonlabel_metrics_database_up"].samples[0].value == 1
    assert len(reads) == 3


def test_metrics_answer_when_the_database_fails(settings: Settings, tmp_path: Path) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'registry.db'}")
    app = create_app(settings.model_copy(update={"metrics_cache_ttl_s": 0.0}), engine=broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/healthz")
        types, samples = scrape(client)
        assert value(samples, "carbonlabel_metrics_database_up") == 0
        assert "carbonlabel_labels" not in types
        assert "carbonlabel_log_entries" not in types
        requests = value(
            samples, "carbonlabel_http_requests_total", method="GET", route="/healthz", status="200"
        )
        assert requests == 1
    broken.dispose()


def test_read_stats_matches_the_log(fresh_client: TestClient, acme: Publisher, db: Engine) -> None:
    assert submit(fresh_client, acme, acme.envelope()) == 201
    stats = read_stats(db)
    assert stats.log_entries == fresh_client.get("/v1/log").json()["tree_size"]
    assert stats.labels[("benchmark", "self-reported")] == 1
    assert stats.log_appended_at.tzinfo is not None


UNITS = ("_seconds", "_bytes", "_ratio", "_info")
COUNTS = {"carbonlabel_labels", "carbonlabel_log_entries", "carbonlabel_metrics_database_up"}
"""Gauges of things counted (no unit) or a 0/1 state: named by what they count."""


def test_names_follow_prometheus_conventions(fresh_client: TestClient, acme: Publisher) -> None:
    client = fresh_client
    assert submit(client, acme, acme.envelope()) == 201
    client.get("/badge/acme/model-a.svg")
    types, samples = scrape(client)
    assert {
        "carbonlabel_http_requests",
        "carbonlabel_http_request_duration_seconds",
        "carbonlabel_label_submissions",
        "carbonlabel_badge_cache_lookups",
        "carbonlabel_http_cache_lookups",
        "carbonlabel_labels",
        "carbonlabel_log_entries",
        "carbonlabel_log_checkpoint_age_seconds",
        "carbonlabel_metrics_database_up",
    } <= set(types)
    for name, kind in types.items():
        if not name.startswith("carbonlabel_"):
            continue
        if name.endswith("_created") and name.removesuffix("_created") in types:
            continue  # prometheus_client's creation time of a counter or histogram (text 0.0.4)
        assert re.fullmatch(r"carbonlabel_[a-z][a-z0-9_]*[a-z0-9]", name), name
        assert not name.endswith("_total"), f"{name}: only a counter's samples end in _total"
        if kind == "counter":
            counted = [s for (s, _) in samples if s.startswith(name + "_")]
            assert all(s in (name + "_total", name + "_created") for s in counted), name
            assert name + "_total" in counted, name
        elif kind == "histogram":
            assert name.endswith(UNITS), f"{name}: a histogram's name ends in its unit"
        else:
            assert kind == "gauge", name
            assert name.endswith(UNITS) or name in COUNTS, f"{name}: name its unit"
