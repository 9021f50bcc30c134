"""Every precomputed figure equals a computation from scratch, after any sequence of changes
(and the peer percentiles read in one statement equal those read one by one).

``vendor_standings`` and ``current_counts`` (services/standings.py) are maintained in the
transaction of each ingest, revision and key compromise; a random sequence of those (and of key
retirements, which change nothing) is driven through the API, and after each step the stored
tables are compared with the labels recomputed from scratch, and every page of the stored
ranking with the ranking aggregated live from the labels (``rank_vendors``). Runs on SQLite and,
in the PostgreSQL lane, on PostgreSQL.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from registry.models import Label
from registry.services import peers, queries, ranking, ranking_rows, rebuild, standings
from schemas.dsse import keyid_for
from tests.helpers import Publisher, add_key, envelope_bytes, register_publisher

HARDWARE = ("nvidia-h100-sxm-80gb", "nvidia-a100-sxm-80gb", "cpu-x86-64")
ZONES = ("FR", "DE")
# suite 1 tasks, and suite 2 text generation (size classes and measured quality)
WORK = (
    ("1", "text-classification", "inference"),
    ("1", "text-classification", "training"),
    ("2", "text-generation", "inference"),
)
PARAMETERS = (1_000_000_000, 30_000_000_000)
EPOCH = datetime(2026, 3, 1, tzinfo=UTC)


def _groups() -> list[dict[str, Any]]:
    """Ranking groups to compare: each task with no filter, one hardware class, one size class."""
    found: list[dict[str, Any]] = []
    for suite, task, phase in WORK:
        base = {"suite": suite, "task": task, "phase": phase}
        found.append(base)
        found.extend(base | {"hardware_class": h} for h in HARDWARE)
        if suite == "2":
            found.append(base | {"size_class": "up-to-20b"})
            found.append(base | {"size_class": "up-to-66b", "hardware_class": HARDWARE[0]})
    return found


def _check(engine: Engine) -> None:
    with engine.connect() as connection:
        assert rebuild.stored_counts(connection) == rebuild.counts_from_scratch(connection)
        assert rebuild.stored_bins(connection) == rebuild.bins_from_scratch(connection)
        assert rebuild.stored_totals(connection) == rebuild.totals_from_scratch(connection)
        assert rebuild.stored_standings(connection) == rebuild.standings_from_scratch(connection)
    with Session(engine) as session:
        labels = list(session.exec(select(Label)).all())
        batch = queries.peer_percentiles(session, labels)
        assert batch == {
            label.id: peers.peer_percentile_from_scratch(session, label)
            if label.measured and label.standard_workload
            else None
            for label in labels
        }
        # one label at a time (a new label's answer, a label's page): the same figures
        assert {label.id: peers.peer_percentile(session, label) for label in labels} == batch
        for group in _groups():
            live = ranking.rank_vendors(session, **group)
            paged: list[ranking_rows.VendorRank] = []
            cursor = None
            while True:  # pages of 2, so the cursor is exercised
                page = ranking.ranking_page(session, **group, limit=2, cursor=cursor)
                assert page.total == len(live)
                paged.extend(page.vendors)
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert paged == live, group
            # chosen vendors (every other one, and one not in the group) at their ranks
            chosen = [r.vendor for r in live[::2]] + ["nobody"]
            picked = ranking.ranking_page(session, **group, limit=len(chosen), vendors=chosen)
            assert picked.vendors == [r for r in live if r.vendor in chosen], group


def _submit(client: TestClient, publisher: Publisher, key: Ed25519PrivateKey, label: Any) -> None:
    response = client.post(
        "/v1/labels", content=envelope_bytes(label, key), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    # the answer's percentile (read in the store's transaction, before the log's lock, with
    # that transaction's changes added) is the one the label has once stored
    answered = response.json()["grade"]["percentile"]
    stored = client.get(f"/v1/labels/{label['label_id']}").json()["grade"]["percentile"]
    assert answered == stored


def test_precomputed_figures_match_a_computation_from_scratch(
    client: TestClient, db: Engine
) -> None:
    rng = random.Random(11)  # a fixed sequence
    publishers = [register_publisher(client, slug) for slug in ("ada", "bel", "cyr")]
    keys = {p.slug: [p.key] for p in publishers}
    revisions: dict[tuple[str, str], int] = {}
    _check(db)
    for step in range(36):
        publisher = rng.choice(publishers)
        action = rng.choices(("label", "revision", "retire", "compromise"), (6, 3, 1, 1))[0]
        active = keys[publisher.slug]
        if action in ("retire", "compromise") and len(active) > 0:
            # a fresh key takes over, then the old one goes
            fresh = Ed25519PrivateKey.generate()
            add_key(client, publisher.slug, publisher.token, fresh)
            old = active.pop(0)
            active.append(fresh)
            body: dict[str, Any] = {"reason": "retired"}
            if action == "compromise":
                since = datetime.now(UTC) - timedelta(seconds=rng.choice((1, 5, 3600)))
                body = {"reason": "compromised", "compromised_since": since.isoformat()}
            response = client.post(
                f"/v1/vendors/{publisher.slug}/keys/{keyid_for(old.public_key())}/revoke",
                json=body,
                headers=publisher.headers,
            )
            assert response.status_code == 200, response.text
        else:
            suite, task, phase = rng.choice(WORK)
            model = f"m{rng.randrange(4)}"
            number = revisions.get((publisher.slug, model), 0)
            if action == "revision" or number == 0:
                number += 1
                revisions[(publisher.slug, model)] = number
            # sometimes older than the current label: stored, but not current
            created = EPOCH + timedelta(days=number * 10 - rng.choice((0, 0, 15)), seconds=step)
            label = publisher.label(
                model=model,
                revision=f"v{number}",
                task=task,
                phase=phase,
                suite=suite,
                hardware_class=rng.choice(HARDWARE),
                zone=rng.choice(ZONES),
                power_w=rng.choice((120.0, 200.0, 300.0, 300.0)),
                parameter_count=rng.choice(PARAMETERS),
                quality=rng.choice((0.3, 0.6, None)),
                created_at=created,
            )
            _submit(client, publisher, active[-1], label)
        _check(db)
    # and (whatever the timing did to the compromise windows) a stored label that is not current
    publisher = publishers[0]
    for days in (40, 20):
        created = EPOCH + timedelta(days=days)
        label = publisher.label(model="late", revision=f"d{days}", created_at=created)
        _submit(client, publisher, keys[publisher.slug][-1], label)
    _check(db)
    with db.connect() as connection:
        # the sequence reached the cases it is meant to: several groups, labels that are not
        # current, labels that lost their standing
        assert len(rebuild.stored_standings(connection)) > 20
        assert sum(n for n, _ in rebuild.stored_counts(connection).values()) > 10
        flags = connection.execute(
            text("SELECT current, standing, count(*) FROM labels GROUP BY current, standing")
        ).all()
        seen = {(bool(current), standing) for current, standing, _ in flags}
        assert {(True, "ok"), (False, "ok"), (False, "key-compromised")} <= seen


def test_rebuild_all_restores_what_maintenance_keeps(client: TestClient, db: Engine) -> None:
    publisher = register_publisher(client, "ada")
    for n, hardware in enumerate(HARDWARE):
        _submit(
            client,
            publisher,
            publisher.key,
            publisher.label(model=f"m{n}", hardware_class=hardware),
        )
    with db.begin() as connection:
        kept = rebuild.stored_standings(connection), rebuild.stored_counts(connection)
        assert kept[0]
        assert kept[1]
        rebuild.rebuild_all(connection)
        assert (rebuild.stored_standings(connection), rebuild.stored_counts(connection)) == kept


def test_ranking_pages_carry_total_cursor_and_link(client: TestClient) -> None:
    for slug in ("ada", "bel", "cyr"):
        publisher = register_publisher(client, slug)
        _submit(client, publisher, publisher.key, publisher.label())
    url = "/v1/vendors?task=text-classification&phase=inference&limit=2"
    first = client.get(url)
    assert first.status_code == 200
    body = first.json()
    assert (body["total"], len(body["vendors"])) == (3, 2)
    assert first.headers["x-total-count"] == "3"
    assert 'rel="next"' in first.headers["link"]
    second = client.get(url + f"&cursor={body['next_cursor']}").json()
    assert second["next_cursor"] is None
    assert second["total"] == 3  # carried by the page's rows
    # past the last vendor: no rows, the total read on its own
    after_last = ranking._encode_cursor(None, "zzz")
    beyond = client.get(url + f"&cursor={after_last}").json()
    assert (beyond["total"], beyond["vendors"], beyond["next_cursor"]) == (3, [], None)
    whole = client.get(url.replace("limit=2", "limit=10")).json()["vendors"]
    assert body["vendors"] + second["vendors"] == whole
    csv_page = client.get(url + "&format=csv")
    assert csv_page.headers["x-total-count"] == "3"
    assert len(csv_page.text.strip().splitlines()) == 3  # the header and 2 vendors
    bad = client.get(url + "&cursor=not-a-cursor")
    assert bad.status_code == 400
    assert bad.json()["type"].endswith("invalid-cursor")


def test_bins_hold_exactly_the_figures_between_their_floors() -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(0, 6) for _ in range(5000)]
    values += [standings.bin_floor(b) for b in range(-200, 200)]  # the edges themselves
    values += [math.nextafter(standings.bin_floor(b), 0.0) for b in range(-200, 200)]
    for value in values:
        number = standings.bin_of(value)
        assert standings.bin_floor(number) <= value < standings.bin_floor(number + 1)
    assert standings.bin_of(0.0) == standings.bin_of(-1.0) == standings.LOWEST_BIN
