"""HTTP caching of the pages, the vendor ranking and the API's label, model and vendor reads
(registry/http_cache.py): ETags and
Cache-Control, 304s answered from one read of the log's head, stored bodies, and invalidation by
any change, also when the change is made through another app instance (another process) on the
same database. Runs on SQLite, and on PostgreSQL with CARBONLABEL_TEST_DATABASE_URL set."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event

from registry import http_cache
from registry.config import Settings
from registry.http_cache import CACHE_CONTROL, DataVersion, PageCache, Stored
from registry.main import create_app
from tests.helpers import ADMIN_TOKEN, Publisher

RANKING = "/v1/vendors?task=text-classification&phase=inference"
PAGES = [
    "/",
    "/?sort=energy&zone=FR",
    "/compare?task=text-classification&phase=inference&vendors=acme",
    "/compare.csv?task=text-classification&phase=inference",
    "/methodology",
    "/vendors/acme",
    "/models/acme/model-a",
    RANKING,
    RANKING + "&format=csv",
    "/v1/labels?task=text-classification&phase=inference&current=true",
    "/v1/labels/{label_id}",
    "/v1/models/acme/model-a",
    "/v1/vendors/acme",
]
STRONG_ETAG = re.compile(r'^"[0-9a-f]{64}"$')


def submit(client: TestClient, publisher: Publisher, **label: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/labels", content=publisher.envelope(**label), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def labelled(client: TestClient, publisher: Publisher) -> Publisher:
    submit(client, publisher, model="model-a", power_w=300.0)
    return publisher


@pytest.fixture
def other_app(labelled: Publisher, settings: Settings) -> Iterator[TestClient]:
    """A second app on the same database, with its own engine (its lifespan makes one from the
    settings) and its own caches: another server process, as far as caching can tell."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as other:
        yield other


@contextmanager
def recording(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def recorded(client: TestClient) -> Iterator[list[str]]:
    with recording(client.app.state.engine) as seen:  # type: ignore[attr-defined]
        yield seen


@pytest.mark.parametrize("path", PAGES)
def test_every_page_and_ranking_has_a_validator_and_answers_304(
    client: TestClient, labelled: Publisher, path: str
) -> None:
    if "{label_id}" in path:
        path = path.format(label_id=client.get("/v1/labels").json()["items"][0]["label_id"])
    first = client.get(path)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    assert STRONG_ETAG.match(etag), etag
    assert first.headers["cache-control"] == CACHE_CONTROL
    # the same answer again: the same ETag and bytes (from the stored answer)
    again = client.get(path)
    assert (again.headers["etag"], again.content) == (etag, first.content)

    for condition in (etag, f'"other", W/{etag}', "*"):
        revalidated = client.get(path, headers={"If-None-Match": condition})
        assert revalidated.status_code == 304, condition
        assert revalidated.content == b""
        assert revalidated.headers["etag"] == etag
        assert revalidated.headers["cache-control"] == CACHE_CONTROL
        assert "content-length" not in revalidated.headers or (
            revalidated.headers["content-length"] == "0"
        )
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    # HEAD: the GET's headers, no body
    head = client.head(path)
    assert head.status_code == 200
    assert (head.headers["etag"], head.content) == (etag, b"")


def test_the_ranking_names_its_representation(client: TestClient, labelled: Publisher) -> None:
    as_json = client.get(RANKING)
    as_csv = client.get(RANKING, headers={"Accept": "text/csv"})
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_json.headers["etag"] != as_csv.headers["etag"]
    assert as_json.headers["vary"] == as_csv.headers["vary"] == "Accept"
    # a validator of one representation does not revalidate the other
    crossed = client.get(
        RANKING, headers={"Accept": "text/csv", "If-None-Match": as_json.headers["etag"]}
    )
    assert crossed.status_code == 200
    assert crossed.content == as_csv.content
    revalidated = client.get(
        RANKING, headers={"Accept": "text/csv", "If-None-Match": as_csv.headers["etag"]}
    )
    assert revalidated.status_code == 304
    assert revalidated.headers["vary"] == "Accept"


def test_query_order_matters_only_within_a_name(client: TestClient, labelled: Publisher) -> None:
    def etag(query: str) -> str:
        response = client.get("/compare" + query)
        assert response.status_code == 200
        return str(response.headers["etag"])

    same = etag("?task=text-classification&phase=inference&vendors=acme&vendors=globex")
    assert same == etag("?vendors=acme&phase=inference&vendors=globex&task=text-classification")
    # the compare page's columns follow the vendors' order: another answer
    assert same != etag("?task=text-classification&phase=inference&vendors=globex&vendors=acme")


def test_304_and_stored_answers_cost_one_read(
    client: TestClient, labelled: Publisher, recorded: list[str]
) -> None:
    first = client.get("/models/acme/model-a")
    rendered = len(recorded)
    assert rendered > 3  # the page's own queries, and the head read after them
    recorded.clear()
    assert client.get("/models/acme/model-a").content == first.content
    assert len(recorded) == 1
    assert "log_head" in recorded[0]
    recorded.clear()
    conditional = {"If-None-Match": first.headers["etag"]}
    assert client.get("/models/acme/model-a", headers=conditional).status_code == 304
    assert len(recorded) == 1
    assert "log_head" in recorded[0]


def test_a_miss_reads_the_version_once_after_its_render(
    client: TestClient, labelled: Publisher, recorded: list[str]
) -> None:
    """Once the process has read a version, a miss renders on it and reads the version once,
    after the render: that it is unchanged proves the body is that version's."""
    client.get("/vendors/acme")  # a version read
    recorded.clear()
    first = client.get("/models/acme/model-a")
    heads = [statement for statement in recorded if "log_head" in statement]
    assert len(heads) == 1
    assert "log_head" in recorded[-1]  # after the page's own reads
    # the answer was stored under that version: served after one read
    recorded.clear()
    again = client.get("/models/acme/model-a")
    assert (again.headers["etag"], again.content) == (first.headers["etag"], first.content)
    assert len(recorded) == 1


def test_a_render_on_a_version_changed_since_gets_no_validator(
    client: TestClient, other_app: TestClient, labelled: Publisher
) -> None:
    """The other process last read the version before a label arrived through this one: its
    next miss renders the new data, finds a newer version after the render, and answers without
    an ETag (nothing stored), never with the old version's validator."""
    other_app.get("/vendors/acme")  # the other process's last read: before the new label
    submit(client, labelled, model="model-b", power_w=100.0)
    other_cache: PageCache = other_app.app.state.page_cache  # type: ignore[attr-defined]
    stored = len(other_cache)
    unconfirmed = other_app.get("/")
    assert unconfirmed.status_code == 200
    assert "model-b" in unconfirmed.text
    assert "etag" not in unconfirmed.headers
    assert len(other_cache) <= stored
    # the next render starts on the version that read found: validated, and the same as here
    confirmed = other_app.get("/")
    assert confirmed.content == unconfirmed.content
    assert confirmed.headers["etag"] == client.get("/").headers["etag"]


def test_a_new_label_changes_the_etag_and_the_page(client: TestClient, labelled: Publisher) -> None:
    old = {path: client.get(path) for path in ("/", "/vendors/acme", RANKING)}
    assert "model-b" not in old["/"].text
    submit(client, labelled, model="model-b", power_w=100.0)
    for path, before in old.items():
        after = client.get(path, headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200, path
        assert after.headers["etag"] != before.headers["etag"]
        assert after.content != before.content
    assert "model-b" in client.get("/").text
    assert "model-b" in client.get("/vendors/acme").text
    assert client.get(RANKING).json()["vendors"][0]["models"] == 2


def test_a_change_made_through_another_process_invalidates_this_one(
    client: TestClient, other_app: TestClient, labelled: Publisher
) -> None:
    # both processes have rendered and stored the leaderboard and the ranking
    seen = {path: other_app.get(path) for path in ("/", RANKING)}
    assert {path: client.get(path).headers["etag"] for path in seen} == {
        path: r.headers["etag"] for path, r in seen.items()
    }
    other_cache: PageCache = other_app.app.state.page_cache  # type: ignore[attr-defined]
    assert len(other_cache) >= 2
    # a new label through the first app
    submit(client, labelled, model="model-b", power_w=100.0)
    for path, before in seen.items():
        after = other_app.get(path, headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200, path
        assert after.headers["etag"] != before.headers["etag"]
        # both processes agree on the new answer and its validator
        assert after.headers["etag"] == client.get(path).headers["etag"]
    assert "model-b" in other_app.get("/").text
    assert other_app.get(RANKING).json()["vendors"][0]["models"] == 2


def test_a_label_read_through_the_api_follows_the_log(
    client: TestClient, other_app: TestClient, labelled: Publisher
) -> None:
    """A label's answer carries its log receipt (the tree it is proven in) and whether it is
    current: another process's stored answer is replaced when a revision is logged here."""
    first = client.get("/v1/labels").json()["items"][0]
    path = f"/v1/labels/{first['label_id']}"
    before = other_app.get(path)
    assert before.json()["current"] is True
    tree_size = before.json()["receipt"]["tree_size"]
    # a newer revision: the first label is no longer current
    submit(client, labelled, model="model-a", revision="r2", created_at=datetime.now(UTC))
    after = other_app.get(path, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert after.json()["current"] is False
    assert after.json()["receipt"]["tree_size"] == tree_size + 1
    listing = other_app.get("/v1/labels?current=true").json()["items"]
    assert first["label_id"] not in [item["label_id"] for item in listing]


def test_a_key_compromise_through_another_process_changes_standing_here(
    client: TestClient, other_app: TestClient, labelled: Publisher
) -> None:
    page = other_app.get("/models/acme/model-a")
    ranking = other_app.get(RANKING)
    assert "Key compromised" not in page.text
    assert [v["vendor"] for v in ranking.json()["vendors"]] == ["acme"]
    since = datetime.now(UTC) - timedelta(days=1)
    revoked = client.post(
        f"/v1/vendors/acme/keys/{labelled.keyid}/revoke",
        json={"reason": "compromised", "compromised_since": since.isoformat()},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert revoked.status_code == 200, revoked.text
    after = other_app.get("/models/acme/model-a", headers={"If-None-Match": page.headers["etag"]})
    assert after.status_code == 200
    assert "Key compromised" in after.text
    after_ranking = other_app.get(RANKING, headers={"If-None-Match": ranking.headers["etag"]})
    assert after_ranking.status_code == 200
    assert after_ranking.json()["vendors"] == []


def test_problems_and_not_found_pages_are_not_cached(
    client: TestClient, labelled: Publisher
) -> None:
    cache: PageCache = client.app.state.page_cache  # type: ignore[attr-defined]
    for path in (
        "/vendors/nobody",
        "/models/acme/nothing",
        "/v1/vendors?task=nope&phase=inference",
    ):
        for condition in ({}, {"If-None-Match": "*"}):
            response = client.get(path, headers=condition)
            assert response.status_code in (404, 422), path
            assert "etag" not in response.headers
            assert "cache-control" not in response.headers
    assert len(cache) == 0
    # other routes are left alone: who the caller is depends on the token, not the log
    whoami = client.get("/v1/whoami", headers=labelled.headers)
    assert whoami.status_code == 200
    assert "etag" not in whoami.headers


def test_a_change_committed_while_rendering_is_neither_validated_nor_stored(
    client: TestClient, labelled: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = http_cache.read_data_version_on

    def moved(connection: Connection) -> DataVersion:
        """The read after the render (by the route, on its session) sees a newer log."""
        version = real(connection)
        return DataVersion(version.tree_size + 1, b"\x01" * 32)

    monkeypatch.setattr(http_cache, "read_data_version_on", moved)
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["cache-control"] == CACHE_CONTROL
    assert "etag" not in response.headers
    assert len(client.app.state.page_cache) == 0  # type: ignore[attr-defined]


def test_a_failed_read_after_the_render_is_answered_without_a_validator(
    client: TestClient, labelled: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(connection: Connection) -> DataVersion:
        raise RuntimeError("log_head has no row")

    monkeypatch.setattr(http_cache, "read_data_version_on", failing)
    response = client.get("/")
    assert response.status_code == 200
    assert "etag" not in response.headers
    assert len(client.app.state.page_cache) == 0  # type: ignore[attr-defined]


def test_without_stored_bodies_validators_still_work(db: Engine, settings: Settings) -> None:
    no_store = settings.model_copy(update={"page_cache_max_bytes": 0})
    with TestClient(create_app(no_store, engine=db)) as client:
        first = client.get("/methodology")
        assert first.status_code == 200
        assert len(client.app.state.page_cache) == 0  # type: ignore[attr-defined]
        with recording(db) as seen:
            revalidated = client.get(
                "/methodology", headers={"If-None-Match": first.headers["etag"]}
            )
        assert len(seen) == 1
        assert revalidated.status_code == 304
        assert revalidated.headers["etag"] == first.headers["etag"]


def test_the_build_identity_names_the_configuration() -> None:
    base = http_cache.build_identity("https://a.example", "0007")
    assert base == http_cache.build_identity("https://a.example", "0007")
    assert base != http_cache.build_identity("https://b.example", "0007")
    assert base != http_cache.build_identity("https://a.example", "0008")
    version = DataVersion(3, b"\x00" * 32)
    etag = http_cache.make_etag(base, version, "/", b"a=1&b=2", "")
    assert etag == http_cache.make_etag(base, version, "/", b"b=2&a=1", "")
    assert etag != http_cache.make_etag(base, DataVersion(4, b"\x00" * 32), "/", b"a=1&b=2", "")
    assert etag != http_cache.make_etag(base, DataVersion(3, b"\x01" * 32), "/", b"a=1&b=2", "")
    assert etag != http_cache.make_etag(base, version, "/", b"a=1&b=2", "csv")


def test_the_page_cache_is_bounded_and_holds_one_version() -> None:
    cache = PageCache(max_bytes=800)
    v1, v2 = DataVersion(1, b"a"), DataVersion(2, b"b")

    def entry(size: int) -> Stored:
        return Stored(b"x" * size, '"e"', [], [])

    cache.observe(v1)
    for name in "abc":
        cache.put(name, v1, entry(100))
    cache.put("big", v1, entry(101))  # over an eighth of the bound: not kept
    assert (len(cache), cache.get("big")) == (3, None)
    assert cache.get("a") is not None  # now the most recently used
    for name in "defghi":  # 900 bytes in all: one must go
        cache.put(name, v1, entry(100))
    assert cache.get("b") is None  # the least recently used went first
    assert cache.get("a") is not None
    cache.put("old", v2, entry(10))  # rendered under a version this cache has not seen
    assert cache.get("old") is None
    cache.observe(v2)
    assert len(cache) == 0
    cache.put("late", v1, entry(10))  # rendered under the version before
    assert cache.get("late") is None


def test_overlapping_renders_of_one_answer_without_stored_bodies() -> None:
    """With no body kept nobody waits for a render in flight, so two renders of the same
    answer overlap: each ends without disturbing the other (it was a KeyError, a 500)."""
    cache = PageCache(max_bytes=0)
    with cache.rendering('"e"'):
        assert cache.in_flight('"e"') is None
        with cache.rendering('"e"'):
            pass
    kept = PageCache(max_bytes=1000)
    with kept.rendering('"e"'):
        mark = kept.in_flight('"e"')
        assert mark is not None
        assert not mark.is_set()
    assert mark.is_set()
    assert kept.in_flight('"e"') is None
