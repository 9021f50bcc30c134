"""The HTML pages over HTTP (no browser): content, filters, sorting, escaping, 404s, headers."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

import markupsafe
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import text

from registry import pages
from schemas.contract import load_methodology
from schemas.results import fill_results
from tests.helpers import ADMIN_TOKEN, Publisher, add_key

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'"
)
PAGES = ("/", "/methodology", "/compare")

HOSTILE_NAME = (
    '<script>alert("x")</script>"><img src=x onerror=alert(1)>'
    "' onmouseover='alert(2)' &amp; \x07\x1b\u202eevil\u202c "
)
HOSTILE_LONG = "=HYPERLINK(" + "W" * 150 + ")"


def submit(
    client: TestClient, publisher: Publisher, label: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    body = publisher.envelope(label) if label is not None else publisher.envelope(**kw)
    response = client.post("/v1/labels", content=body, headers=publisher.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def register(client: TestClient, slug: str, display_name: str) -> Publisher:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"slug": slug, "display_name": display_name}
    response = client.post("/v1/vendors", json=body, headers=admin)
    if response.status_code == 422:
        # The API refuses control and bidi characters in names (tests/test_abuse.py); names
        # stored before it did must still render safely: store this one directly.
        response = client.post("/v1/vendors", json={"slug": slug}, headers=admin)
        with client.app.state.engine.begin() as conn:  # type: ignore[attr-defined]
            update = "UPDATE vendors SET display_name = :name WHERE slug = :slug"
            conn.execute(text(update), {"name": display_name, "slug": slug})
    assert response.status_code == 201, response.text
    key = Ed25519PrivateKey.generate()
    token = response.json()["token"]
    add_key(client, slug, token, key)
    return Publisher(slug=slug, token=token, key=key)


def estimated_label(publisher: Publisher, **kw: Any) -> dict[str, Any]:
    """A label whose energy is estimated: power samples from a model instead of a meter."""
    label = publisher.label(**kw)

    def convert(window: dict[str, Any]) -> None:
        duration = window["t_end_s"] - window["t_start_s"]
        components = []
        for c in window["components"]:
            power = (c["counter_end_j"] - c["counter_start_j"]) / duration
            t0, t1 = window["t_start_s"], window["t_end_s"]
            samples = [[t0, power], [(t0 + t1) / 2, power * 1.1], [t1, power]]
            components.append({"name": c["name"], "method": "estimate", "samples": samples})
        window["components"] = components

    convert(label["traces"]["idle"])
    for trial in label["traces"]["trials"]:
        convert(trial)
    label["measurement"]["components"] = [{"name": "gpu", "method": "estimate"}]
    label["measurement"]["flags"] = ["estimated"]
    return fill_results(label)


def current_labels(client: TestClient, **filters: str) -> list[dict[str, Any]]:
    items = client.get("/v1/labels", params={"limit": 100, **filters}).json()["items"]
    return [item for item in items if item["current"]]


def rows(page: str) -> list[dict[str, str]]:
    """The leaderboard's rows, from their data attributes."""
    found = []
    for attrs in re.findall(r"<tr (data-label-id=[^>]*)>", page):
        found.append(
            {k: html.unescape(v) for k, v in re.findall(r'data-([a-z0-9-]+)="([^"]*)"', attrs)}
        )
    return found


@pytest.fixture
def catalogue(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> dict[str, Any]:
    """acme and globex on two tasks, two hardware classes and two zones; one model twice."""
    made = {
        "old": submit(client, publisher, model="bert", revision="v1", power_w=300.0),
        "bert": submit(client, publisher, model="bert", revision="v2", power_w=250.0),
        "tiny": submit(
            client,
            publisher,
            model="tiny",
            hardware_class="nvidia-l4-24gb",
            zone="DE",
            intensity_g_per_kwh=344,
            power_w=60.0,
        ),
        "big": submit(client, other_publisher, model="big", zone="US-CAL", power_w=900.0),
        "gen": submit(
            client,
            other_publisher,
            model="gen",
            task="text-generation",
            power_w=400.0,
            units_per_trial=200,
        ),
        "train": submit(
            client,
            publisher,
            model="bert",
            revision="v2",
            phase="training",
            power_w=300.0,
            units_per_trial=20,
        ),
    }
    return made


# --------------------------------------------------------------------------- leaderboard


def test_leaderboard_lists_current_labels_with_grade_percentile_energy_and_co2e(
    client: TestClient, catalogue: dict[str, Any]
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    listed = rows(page)
    current_ids = {
        item["label_id"]
        for item in current_labels(client, task="text-classification", phase="inference")
    }
    assert len(current_ids) == 3  # one of acme/bert's two revisions is current
    assert {r["label-id"] for r in listed} == current_ids
    assert {r["model"] for r in listed} == {"bert", "tiny", "big"}
    assert 'href="/models/acme/bert"' in page
    assert 'href="/vendors/globex"' in page
    big = catalogue["big"]
    assert f">{big['grade']['grade']}</span>" in page
    assert "too few peers (1)" in page  # fewer than MIN_PEERS: no percentile, their number
    assert pages.format_number(big["energy_per_unit_wh"]) in page
    assert pages.format_number(big["co2e_per_unit_g"]) in page
    assert pages.format_number(big["energy_ci95_high_wh"]) in page
    assert "measured" in page
    assert "<caption>" in page
    assert 'aria-current="page">text-classification</a>' in page


def test_estimated_labels_say_estimated_and_have_no_grade(
    client: TestClient, publisher: Publisher
) -> None:
    made = submit(client, publisher, estimated_label(publisher, model="guess"))
    assert made["grade"]["grade"] is None
    page = client.get("/").text
    (row,) = rows(page)
    assert row["grade"] == ""
    assert "estimated</span>" in page
    assert "no grade" in page


def test_filters_change_the_rows(client: TestClient, catalogue: dict[str, Any]) -> None:
    everything = rows(client.get("/?task=text-classification&phase=inference").text)
    assert {r["hardware"] for r in everything} == {"nvidia-h100-sxm-80gb", "nvidia-l4-24gb"}

    l4 = rows(client.get("/", params={"hardware": "nvidia-l4-24gb"}).text)
    assert [r["model"] for r in l4] == ["tiny"]

    zoned = rows(client.get("/", params={"zone": "US-CAL"}).text)
    assert [r["model"] for r in zoned] == ["big"]

    both = rows(client.get("/", params={"zone": "DE", "hardware": "nvidia-h100-sxm-80gb"}).text)
    assert both == []

    training = rows(client.get("/", params={"phase": "training"}).text)
    assert [r["label-id"] for r in training] == [catalogue["train"]["label_id"]]

    generation = client.get("/", params={"task": "text-generation"}).text
    assert [r["model"] for r in rows(generation)] == ["gen"]
    assert 'aria-current="page">text-generation</a>' in generation

    page = client.get("/", params={"zone": "US-CAL"}).text
    assert '<option value="US-CAL" selected>' in page
    assert '<option value="DE">' in page  # the other zones stay selectable


def test_sorting(client: TestClient, catalogue: dict[str, Any]) -> None:
    def energies(sort: str) -> list[float]:
        return [float(r["energy"]) for r in rows(client.get("/", params={"sort": sort}).text)]

    ascending = energies("energy")
    assert len(ascending) == 3
    assert ascending == sorted(ascending)
    assert energies("-energy") == sorted(ascending, reverse=True)
    co2e = [float(r["co2e"]) for r in rows(client.get("/?sort=-co2e").text)]
    assert co2e == sorted(co2e, reverse=True)
    vendors = [r["vendor"] for r in rows(client.get("/?sort=-vendor").text)]
    assert vendors == sorted(vendors, reverse=True)
    by_grade = rows(client.get("/?sort=grade").text)
    assert [r["grade"] for r in by_grade] == sorted(r["grade"] for r in by_grade)
    # an unknown sort falls back to the default rather than failing
    assert client.get("/?sort=;drop").status_code == 200

    page = client.get("/?sort=energy&zone=FR").text
    assert 'aria-sort="ascending"' in page
    assert (
        'href="?task=text-classification&amp;phase=inference&amp;zone=FR&amp;sort=-energy"' in page
    )


def test_leaderboard_pages_through_long_lists(
    client: TestClient, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "LEADERBOARD_PAGE_SIZE", 2)
    for i in range(3):
        submit(client, publisher, model=f"m{i}", power_w=100.0 + 100 * i)
    for i in range(3, 5):  # in another zone: the pages cover the whole group
        submit(client, publisher, model=f"m{i}", power_w=100.0 + 100 * i, zone="DE")

    def link(page: str, rel: str) -> str | None:
        found = re.search(rf'<a href="([^"]+)" rel="{rel}"', page)
        return html.unescape(found.group(1)) if found else None

    first = client.get("/?sort=energy").text
    assert [r["model"] for r in rows(first)] == ["m0", "m1"]
    assert "5 current labels" in first
    assert "Page 1 of 3" in first
    assert link(first, "prev") is None
    second = client.get("/" + str(link(first, "next"))).text
    assert [r["model"] for r in rows(second)] == ["m2", "m3"]
    assert "Page 2 of 3" in second
    third = client.get("/" + str(link(second, "next"))).text
    assert [r["model"] for r in rows(third)] == ["m4"]
    assert link(third, "next") is None
    back = client.get("/" + str(link(third, "prev"))).text
    assert [r["model"] for r in rows(back)] == ["m2", "m3"]
    assert [r["model"] for r in rows(client.get("/" + str(link(back, "prev"))).text)] == [
        "m0",
        "m1",
    ]
    # descending, over the whole group; a filter narrows the total
    assert [r["model"] for r in rows(client.get("/?sort=-energy").text)] == ["m4", "m3"]
    in_de = client.get("/?sort=energy&zone=DE").text
    assert "2 current labels" in in_de
    # the filter options stay those of the whole group, the chosen one selected
    zone_select = in_de.split('id="f-zone"')[1].split("</select>")[0]
    zones = re.findall(r'<option value="([^"]*)"', zone_select)
    assert len(zones) == 3  # all zones, DE and the other one
    assert '<option value="DE" selected>' in zone_select
    # a cursor of another sort order, or none this site made, starts from the first page
    assert [r["model"] for r in rows(client.get("/?sort=-energy&after=banana").text)] == [
        "m4",
        "m3",
    ]
    foreign = str(link(first, "next")).split("after=")[1]
    assert [r["model"] for r in rows(client.get(f"/?sort=co2e&after={foreign}").text)] == [
        "m0",
        "m1",
    ]


@pytest.mark.parametrize("sort", ["grade", "-quality", "quality", "-date", "model", "-co2e"])
def test_leaderboard_pages_forth_and_back_in_every_order(
    client: TestClient, publisher: Publisher, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    """Following the next links visits the whole order once, in order, and the previous links
    come back through the same pages: each sort's cursor (booleans, numbers, text, times) is
    bound as its keys compare in the database."""
    for i in range(5):
        submit(client, publisher, model=f"m{i}", power_w=100.0 + 50 * (i % 3))
    whole = [r["model"] for r in rows(client.get(f"/?sort={sort}&whole=1").text)]
    assert sorted(whole) == [f"m{i}" for i in range(5)]
    monkeypatch.setattr(pages, "LEADERBOARD_PAGE_SIZE", 2)  # (a URL not asked for before)

    def link(page: str, rel: str) -> str | None:
        found = re.search(rf'<a href="([^"]+)" rel="{rel}"', page)
        return html.unescape(found.group(1)) if found else None

    page = client.get(f"/?sort={sort}").text
    forth = [[r["model"] for r in rows(page)]]
    while (after := link(page, "next")) is not None:
        page = client.get("/" + after).text
        forth.append([r["model"] for r in rows(page)])
    assert len(forth) == 3
    assert [m for shown in forth for m in shown] == whole
    back = [[r["model"] for r in rows(page)]]
    while (before := link(page, "prev")) is not None:
        page = client.get("/" + before).text
        back.append([r["model"] for r in rows(page)])
    assert back == forth[::-1]


# --------------------------------------------------------------------------- model page


def test_model_page(client: TestClient, publisher: Publisher, catalogue: dict[str, Any]) -> None:
    response = client.get("/models/acme/bert")
    assert response.status_code == 200
    page = response.text
    (current,) = current_labels(client, model="acme/bert", phase="inference")
    # the label card and badges of the badge routes
    assert (
        '<img src="/label/acme/bert.svg?task=text-classification&amp;phase=inference&amp;suite=1"'
        in page
    )
    # the README badge is pinned to the task and phase of the label shown first
    assert 'src="/badge/acme/bert.svg?task=text-classification&amp;phase=inference"' in page
    assert f'href="/badge/label/{current["label_id"]}.svg"' in page
    # one section per current label (inference and training)
    assert page.count('class="label-section"') == 2
    # energy history chart with both revisions, and the power timeline of each trial
    assert page.count('<svg class="chart history"') == 2
    assert page.count('<svg class="chart timeline"') == 2
    assert ">v1</text>" in page
    assert ">v2</text>" in page
    for n in range(1, 6):
        assert f">trial {n}</text>" in page
    assert 'class="window window-idle"' in page
    assert 'class="baseline series-0"' in page
    assert "power series-0 power-flat" in page  # counter readings: the window's mean power
    # verification status
    assert publisher.keyid in page
    assert "Signature verified" in page
    assert "Schema valid" in page
    assert "Results recomputed" in page
    # embed snippets, absolute, escaped, with copy buttons
    badge = "http://testserver/badge/acme/bert.svg?task=text-classification&phase=inference"
    target = "http://testserver/models/acme/bert"
    alt = "carbon label of acme/bert (text-classification, inference)"
    markdown = f"[![{alt}]({badge})]({target})"
    assert html.escape(markdown, quote=False) in page
    pinned = badge.replace("&", "&amp;")
    html_snippet = f'<a href="{target}"><img src="{pinned}" alt="{alt}"></a>'
    assert str(markupsafe.escape(html_snippet)) in page
    # the label first, the README box below it
    assert page.index('class="label-section"') < page.index('id="embed-h"')
    assert html.escape(f".. image:: {badge}\n   :target: {target}", quote=False) in page
    assert page.count('class="copy"') == 3
    # links to the JSON and the envelope
    assert f'href="/v1/labels/{current["label_id"]}"' in page
    assert f'href="/v1/labels/{current["label_id"]}/envelope"' in page
    assert 'href="/v1/models/acme/bert"' in page


def test_model_page_draws_power_samples(client: TestClient, publisher: Publisher) -> None:
    submit(client, publisher, estimated_label(publisher, model="guess"))
    page = client.get("/models/acme/guess").text
    samples = re.findall(r'<polyline class="power series-0" points="([^"]*)"', page)
    assert len(samples) == 6  # idle + 5 trials, each drawn from its samples
    assert all(len(points.split()) == 3 for points in samples)
    assert "estimate" in page


def test_timeline_chart_handles_counter_wraparound() -> None:
    window = {
        "t_start_s": 0.0,
        "t_end_s": 10.0,
        "components": [
            {
                "name": "cpu",
                "method": "rapl",
                "counter_range_j": 1000.0,
                "counter_start_j": 900.0,
                "counter_end_j": 100.0,
            }
        ],
    }
    trial = dict(window, t_start_s=12.0, t_end_s=22.0, units=10, index=0)
    chart = pages.timeline_chart({"traces": {"idle": window, "trials": [trial]}})
    assert chart is not None
    assert [w.mean_power_w for w in chart.windows] == [20.0, 20.0]
    assert chart.idle_power_w == 20.0
    assert pages.timeline_chart({"traces": {}}) is None


def test_nice_ticks_and_numbers() -> None:
    assert pages.nice_ticks(5.3) == [0.0, 2.0, 4.0, 6.0]
    assert pages.nice_ticks(0.0) == [0.0, 1.0]
    assert pages.format_number(0.012345) == "0.0123"
    assert pages.format_number(1234.6) == "1,235"
    assert pages.format_number(None) == "—"


# --------------------------------------------------------------------------- vendor page


def test_vendor_page(client: TestClient, publisher: Publisher, catalogue: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.generate()
    keyid = add_key(client, "acme", publisher.token, key).json()["keyid"]
    revoked = client.post(
        f"/v1/vendors/acme/keys/{keyid}/revoke",
        json={"reason": "retired"},
        headers=publisher.headers,
    )
    assert revoked.status_code == 200, revoked.text
    response = client.get("/vendors/acme")
    assert response.status_code == 200
    page = response.text
    assert "<h1><bdi>acme</bdi></h1>" in page
    assert publisher.keyid in page
    assert keyid in page
    assert ">active</span>" in page
    assert ">retired</span>" in page
    assert 'href="/models/acme/bert"' in page
    assert 'href="/models/acme/tiny"' in page
    assert 'src="/badge/acme/bert.svg"' in page
    assert f">{catalogue['tiny']['grade']['grade']}</span>" in page
    assert 'href="/v1/vendors/acme"' in page
    assert (
        "/compare?task=text-classification&amp;phase=inference&amp;suite=1&amp;vendors=acme" in page
    )
    # every benchmark label is counted, the one bert no longer shows (v1) too
    listed = client.get("/v1/labels", params={"vendor": "acme", "kind": "benchmark"}).json()
    assert any(not item["current"] for item in listed["items"])
    assert f"<dt>Benchmark labels</dt><dd>{len(listed['items'])}</dd>" in page


# --------------------------------------------------------------------------- compare


def test_compare_page_side_by_side_with_exports(
    client: TestClient, catalogue: dict[str, Any]
) -> None:
    response = client.get(
        "/compare?task=text-classification&phase=inference&hardware=all&vendors=acme,globex"
    )
    assert response.status_code == 200
    page = response.text
    assert "All hardware classes together" in page
    table = page[
        page.index('id="compare-table"') : page.index("</table>", page.index('id="compare-table"'))
    ]
    assert '<a href="/vendors/acme"><bdi>acme</bdi></a>' in table
    assert '<a href="/vendors/globex"><bdi>globex</bdi></a>' in table
    assert "Rank" in table
    assert "Measured share" in table
    assert "/v1/vendors?task=text-classification&amp;phase=inference&amp;format=csv" in page
    assert (
        "/compare.csv?task=text-classification&amp;phase=inference&amp;hardware=all"
        "&amp;vendors=acme%2Cglobex" in page
    )
    api_csv = re.search(r'href="(/v1/vendors\?[^"]*format=csv)"', page)
    assert api_csv is not None
    ranking = client.get(html.unescape(api_csv.group(1)))
    assert ranking.status_code == 200
    assert ranking.headers["content-type"].startswith("text/csv")
    # the checkbox form submits vendors=a&vendors=b: the same comparison
    same = client.get(
        "/compare",
        params=[
            ("task", "text-classification"),
            ("hardware", "all"),
            ("vendors", "acme"),
            ("vendors", "globex"),
        ],
    ).text
    assert 'id="compare-table"' in same

    exported = client.get(
        "/compare.csv?task=text-classification&phase=inference&hardware=all&vendors=acme,globex"
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in exported.headers["content-disposition"]
    table_rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["vendor"] for r in table_rows] == ["acme", "globex"]  # acme's median is lower
    assert table_rows[0]["rank"] == "1"
    assert table_rows[0]["task"] == "text-classification"
    assert float(table_rows[0]["score_wh"]) < float(table_rows[1]["score_wh"])
    assert table_rows[0]["score_unit"] == "Wh per 1,000 inferences"  # the unit beside it
    assert {"models", "measured_share", "best_grade", "worst_grade"} <= set(table_rows[0])

    hardware = client.get("/compare.csv?vendors=acme,globex&hardware=nvidia-l4-24gb").text
    assert [r["vendor"] for r in csv.DictReader(io.StringIO(hardware))] == ["acme"]


def test_compare_needs_two_vendors_and_survives_unknown_ones(
    client: TestClient, catalogue: dict[str, Any]
) -> None:
    page = client.get("/compare").text
    assert "Choose two or more vendors" in page
    assert 'name="vendors" value="acme"' in page
    page = client.get("/compare?vendors=acme,nobody").text
    assert 'id="compare-table"' in page
    assert "no such vendor" in page
    assert client.get("/compare?task=nope").status_code == 404


def test_compare_lists_the_top_of_a_long_ranking_and_the_compared_vendors(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.pages import compare

    monkeypatch.setattr(compare, "COMPARE_RANKING_ROWS", 2)
    for n, slug in enumerate(("v-a", "v-b", "v-c", "v-d")):  # v-a best, v-d worst
        submit(client, register(client, slug, slug.upper()), power_w=100.0 + 100 * n)
    page = client.get("/compare?vendors=v-a,v-d").text
    table = page[page.index('id="ranking-table"') :]
    listed = re.findall(r'<a href="/vendors/([a-z-]+)"><bdi>', table)
    assert listed == ["v-a", "v-b", "v-d"]  # the first two, and the compared one at rank 4
    assert "4 of 4" in page
    assert "The first of the 4 vendors" in page
    # the CSV of the group (none chosen) has every vendor
    whole = client.get("/compare.csv").text.strip().splitlines()
    assert len(whole) == 1 + 4


# --------------------------------------------------------------------------- methodology


def test_methodology_page_renders_the_methodology_file(client: TestClient) -> None:
    response = client.get("/methodology")
    assert response.status_code == 200
    page = response.text
    methodology = load_methodology()
    for task, spec in methodology["tasks"].items():
        assert task in page
        assert html.escape(spec["description"]) in page
    for hardware_class in methodology["hardware_classes"]:
        assert f"<code>{hardware_class}</code>" in page
    bands = methodology["grades"]["bands_wh"]["text-classification"]["inference"]["default"]
    assert f"&lt; {pages.format_number(bands[0])}" in page
    assert f"≥ {pages.format_number(bands[-1])}" in page
    assert f"grading v{methodology['grades']['grading_version']}" in page
    assert "Idle baseline" in page
    assert "docs/methodology.md" in page
    suite_2 = page[page.index('id="grades-suite-2"') :]
    generation = methodology["suites"]["2"]["grades"]["bands_wh"]["text-generation"]["inference"]
    for size_class, label in (("up-to-20b", "≤ 20B"), ("over-66b", "&gt; 66B")):
        bands = generation["size_classes"][size_class]["default"]
        row = suite_2[suite_2.index(f"{label} parameters") :]
        row = row[: row.index("</tr>")]
        assert f"&lt; {pages.format_number(bands[0])}" in row
        assert f"≥ {pages.format_number(bands[-1])}" in row
        assert "Wh per 1,000 requests" in row
    assert "grading v2" in suite_2


# --------------------------------------------------------------------------- 404s and headers


@pytest.mark.parametrize(
    "path",
    ["/models/acme/nope", "/models/nobody/x", "/vendors/nobody", "/?task=nope", "/?phase=nope"],
)
def test_unknown_things_get_an_html_404(
    client: TestClient, publisher: Publisher, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CSP
    assert "<h1>Not found</h1>" in response.text


def test_api_routes_keep_problem_json(client: TestClient, publisher: Publisher) -> None:
    response = client.get("/v1/models/acme/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert (
        client.get("/compare.csv?task=nope").headers["content-type"] == "application/problem+json"
    )


def test_pages_carry_security_headers_and_no_inline_code(
    client: TestClient, catalogue: dict[str, Any]
) -> None:
    for path in (*PAGES, "/models/acme/bert", "/vendors/acme", "/compare?vendors=acme,globex"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        page = response.text
        assert page.startswith('<!doctype html>\n<html lang="en">')
        assert re.search(r"<script(?![^>]*\bsrc=)", page) is None, "inline script"
        assert re.search(r"\sstyle=", page) is None, "inline style attribute"
        assert "<style" not in page
        assert re.search(r"\son[a-z]+=", page) is None, "inline event handler"
        external = re.findall(r'<(?:script|link|img)\b[^>]*(?:src|href)="(?!/)([^"]*)"', page)
        assert external == [], f"{path}: resources not from this origin: {external}"
        for landmark in ("<header", "<nav", "<main", "<footer", 'class="skip-link"'):
            assert landmark in page, (path, landmark)


def test_static_assets(client: TestClient) -> None:
    for path, kind in (
        ("/static/style.css", "text/css"),
        ("/static/app.js", "javascript"),
        ("/static/favicon.svg", "image/svg+xml"),
    ):
        response = client.get(path)
        assert response.status_code == 200
        assert kind in response.headers["content-type"]


# --------------------------------------------------------------------------- hostile text


def test_hostile_names_are_escaped_on_every_page(client: TestClient, publisher: Publisher) -> None:
    evil = register(client, "evil", HOSTILE_NAME)
    formula = register(client, "formula", HOSTILE_LONG)
    label = evil.label(model="m.1_x-y")
    label["hardware"]["accelerator"]["model_name"] = "<b>GPU</b>\"'&"
    label["hardware"]["cpu"] = {"model_name": "</dd><script>alert(3)</script>", "cores": 4}
    for window in (label["traces"]["idle"], *label["traces"]["trials"]):
        window["components"][0]["device"] = '"><svg onload=alert(4)>'
    submit(client, evil, label)
    submit(client, formula, model="f")
    submit(client, publisher, model="ok")

    paths = [
        "/",
        "/models/evil/m.1_x-y",
        "/vendors/evil",
        "/vendors/formula",
        "/compare?vendors=evil,formula,acme",
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.text
        for raw in ("<script>alert", "<img src=x", "<b>GPU</b>", "<svg onload", "onmouseover='"):
            assert raw not in page, (path, raw)
        assert "\x07" not in page
        assert "\x1b" not in page
    vendor_page = client.get("/vendors/evil").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in vendor_page
    assert "&amp;amp;" in vendor_page  # escaped once, not decoded
    assert "<bdi>" in vendor_page  # right-to-left overrides stay inside their name
    model_page = client.get("/models/evil/m.1_x-y").text
    assert "&lt;b&gt;GPU&lt;/b&gt;&#34;&#39;&amp;" in model_page
    assert "&#34;&gt;&lt;svg onload=alert(4)&gt;" in model_page
    assert HOSTILE_LONG in client.get("/vendors/formula").text

    exported = client.get("/compare.csv?vendors=evil,formula")
    names = {r["vendor"]: r["display_name"] for r in csv.DictReader(io.StringIO(exported.text))}
    assert names["formula"] == "'" + HOSTILE_LONG  # no spreadsheet formula
    assert names["evil"] == HOSTILE_NAME  # CSV carries the text as it is


def test_hostile_path_segments_are_escaped(client: TestClient, publisher: Publisher) -> None:
    for path in ("/models/<script>/x", "/vendors/%3Cscript%3Ealert(1)"):
        response = client.get(path)
        assert response.status_code == 404
        assert "<script>alert" not in response.text
        assert "&lt;script&gt;" in response.text


def test_leaderboard_percentiles_match_the_api(client) -> None:  # type: ignore[no-untyped-def]
    """The leaderboard computes percentiles in memory; they equal the API's grade percentile."""
    import re

    from tests.helpers import register_publisher

    publisher = register_publisher(client, "pct")
    ids = []
    for i, power in enumerate((100.0, 300.0, 900.0, 2700.0, 8100.0, 24300.0)):
        response = client.post(
            "/v1/labels",
            content=publisher.envelope(model=f"m{i}", power_w=power),
            headers=publisher.headers,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["label_id"])
    expected = sorted(client.get(f"/v1/labels/{i}").json()["grade"]["percentile"] for i in ids)
    page = client.get("/", params={"task": "text-classification", "phase": "inference"}).text
    found = re.findall(r"better than ([0-9.]+)% of (\d+) peers", page)
    assert {int(n) for _, n in found} == {5}  # each label's peers, counted beside it
    shown = sorted(float(v) for v, _ in found)
    assert shown == [round(v) for v in expected]


# --------------------------------------------------------------------------- suite 2: quality

B = 1_000_000_000
DECLARED = {
    "metric": "exact_match",
    "value": 0.655,
    "source": "lm-evaluation-harness",
    "task": "gsm8k",
    "filter": "strict-match",
    "n_samples": 1319,
    "file_sha256": "ab" * 32,
}


def suite_2(
    client: TestClient,
    publisher: Publisher,
    model: str,
    parameters: int,
    quality: float | None,
    *,
    task: str = "text-generation",
    declared: list[dict[str, Any]] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Submit a suite-2 label (defaults: text generation, ~45 Wh per 1,000 requests)."""
    kw = {"power_w": 450.0, "units_per_trial": 28, **kw}
    label = publisher.label(
        model=model, task=task, suite="2", parameter_count=parameters, quality=quality, **kw
    )
    if declared:
        label["quality"]["declared"] = declared
    return submit(client, publisher, label)


def share(result: dict[str, Any]) -> str:
    """The measured quality of a submitted label as the pages show it."""
    return f"{result['quality']['value'] * 100:.1f}%"


@pytest.fixture
def quality_catalogue(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> dict[str, Any]:
    """Suite-2 text generation in two size classes (one model below the frontier), suite-2
    classification with and without a quality figure, and a suite-1 generation label."""
    return {
        "small": suite_2(client, publisher, "chat-1b", int(1.2 * B), 0.2, power_w=250.0),
        "mid": suite_2(client, publisher, "chat-8b", 8 * B, 0.6, declared=[DECLARED]),
        "worse": suite_2(client, other_publisher, "chat-3b", 3 * B, 0.3, power_w=650.0),
        "big": suite_2(client, other_publisher, "big-32b", 32 * B, 0.9, units_per_trial=12),
        "intents": suite_2(
            client,
            publisher,
            "bert-b77",
            B // 10,
            0.85,
            task="text-classification",
            power_w=200.0,
            units_per_trial=1500,
        ),
        "no-intents": suite_2(
            client,
            other_publisher,
            "bert-x",
            B // 10,
            None,
            task="text-classification",
            power_w=150.0,
            units_per_trial=2000,
        ),
        "suite-1": submit(
            client, publisher, model="gen-v1", task="text-generation", units_per_trial=200
        ),
    }


def test_leaderboard_defaults_to_the_newest_suite_and_shows_quality_per_token_and_size(
    client: TestClient, quality_catalogue: dict[str, Any]
) -> None:
    page = client.get("/?task=text-generation").text
    found = rows(page)
    assert {r["model"] for r in found} == {"chat-1b", "chat-8b", "chat-3b", "big-32b"}
    assert {r["suite"] for r in found} == {"2"}
    assert '<option value="2" selected>' in page
    assert "Wh per 1,000 requests" in page
    assert "Wh per 1,000 requests" in page
    assert "GSM8K exact match" in page
    for key in ("small", "mid", "worse", "big"):
        assert share(quality_catalogue[key]) in page
        per_token = quality_catalogue[key]["energy_per_output_token_j"]
        assert f"{pages.format_number(per_token)} J/token" in page
    assert "≤ 20B parameters" in page
    assert "20B\u201366B parameters" in page
    assert 'data-quality=""' not in page
    assert "tag-declared" in page  # the declared figure, flagged

    by_quality = rows(client.get("/?task=text-generation&sort=-quality").text)
    values = [float(r["quality"]) for r in by_quality]
    assert values == sorted(values, reverse=True)
    ascending = rows(client.get("/?task=text-generation&sort=quality").text)
    assert [r["model"] for r in ascending] == [r["model"] for r in reversed(by_quality)]

    sized = rows(client.get("/?task=text-generation&size_class=up-to-66b").text)
    assert [r["model"] for r in sized] == ["big-32b"]
    assert client.get("/?task=text-generation&size_class=huge").status_code == 404
    assert client.get("/?task=text-generation&suite=9").status_code == 404

    suite_1 = client.get("/?task=text-generation&suite=1").text
    assert [r["model"] for r in rows(suite_1)] == ["gen-v1"]
    assert "not reported" in suite_1
    assert "J/token" not in suite_1
    assert "Model size" not in suite_1  # no size classes in suite 1
    assert "Wh per 1,000 inferences" in suite_1

    # classification: accuracy, or why there is none; sorting keeps the missing figure last
    classes = client.get("/?task=text-classification&suite=2&sort=-quality").text
    assert [r["model"] for r in rows(classes)] == ["bert-b77", "bert-x"]
    assert share(quality_catalogue["intents"]) in classes
    assert "unavailable" in classes
    assert "the model&#39;s labels are not the dataset&#39;s" in classes
    assert [
        r["model"] for r in rows(client.get("/?task=text-classification&suite=2&sort=quality").text)
    ] == ["bert-b77", "bert-x"]


def test_model_page_shows_quality_declared_figures_tokens_and_size_class(
    client: TestClient, quality_catalogue: dict[str, Any]
) -> None:
    page = client.get("/models/acme/chat-8b").text
    measured = quality_catalogue["mid"]
    figure = re.search(r'<span class="figure quality-figure">([^<]*)</span>', page)
    assert figure is not None
    assert figure.group(1) == share(measured)
    assert "GSM8K exact match, 200 items, measured in the same run" in page
    declared = page[page.index('class="declared"') :]
    assert ">declared</span> gsm8k exact_match (strict-match) 65.5%" in declared
    assert "lm-evaluation-harness" in declared
    assert (
        f"{pages.format_number(measured['energy_per_output_token_j'])} J per generated token"
        in page
    )
    assert "suite 2 · size class ≤ 20B parameters" in page
    assert "8B parameters · bfloat16" in page
    assert re.search(r"[\d,]+ input · [\d,]+ output · [\d,.]+ output tokens/s", page)
    assert "/label/acme/chat-8b.svg?task=text-generation&amp;phase=inference&amp;suite=2" in page
    assert "Wh per 1,000 requests" in page

    suite_1 = client.get("/models/acme/gen-v1").text
    assert '<span class="not-reported">not reported</span>' in suite_1
    assert "J per generated token" not in suite_1
    unavailable = client.get("/models/globex/bert-x").text
    assert "unavailable" in unavailable
    assert "the model&#39;s labels are not the dataset&#39;s classes" in unavailable


def test_vendor_page_lists_quality_and_suite(
    client: TestClient, quality_catalogue: dict[str, Any]
) -> None:
    page = client.get("/vendors/acme").text
    assert "suite 2</span> · text-generation · inference" in page
    assert "suite 1</span> · text-generation · inference" in page
    assert share(quality_catalogue["mid"]) in page
    assert "not reported" in page  # the suite-1 label
    assert "/compare?task=text-generation&amp;phase=inference&amp;suite=2&amp;vendors=acme" in page


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[0] and a[1] >= b[1] and a != b


def test_pareto_frontier_on_a_hand_made_set() -> None:
    points = [
        (1.0, 0.2),  # 0: least energy at its score: on the frontier
        (2.0, 0.5),  # 1: on it
        (3.0, 0.4),  # 2: 1 uses less and scores higher
        (2.0, 0.3),  # 3: same energy as 1, lower score
        (4.0, 0.5),  # 4: same score as 1, more energy
        (5.0, 0.9),  # 5: on it
        (5.0, 0.9),  # 6: identical to 5: both on it
        (0.5, 0.1),  # 7: least energy of all: on it
        (6.0, 0.8),  # 8: 5 uses less and scores higher
        (9.0, 0.95),  # 9: highest score: on it
    ]
    assert pages.pareto_frontier(points) == [0, 1, 5, 6, 7, 9]
    # the definition, checked by brute force
    expected = [i for i, p in enumerate(points) if not any(_dominates(q, p) for q in points)]
    assert pages.pareto_frontier(points) == expected
    assert pages.pareto_frontier([]) == []
    assert pages.pareto_frontier([(3.0, 0.0)]) == [0]
    assert pages.pareto_frontier([(1.0, 0.9), (2.0, 0.1)]) == [0]


def _inputs(points: list[tuple[float, float]]) -> list[Any]:
    return [
        pages.ParetoInput(label_id=str(i), vendor="v", model=f"m{i}", energy_wh=e, quality=q)
        for i, (e, q) in enumerate(points)
    ]


def test_pareto_chart_geometry() -> None:
    chart = pages.pareto_chart(_inputs([(2.0, 0.5), (1.0, 0.2), (3.0, 0.4), (100.0, 1.0)]), "Wh")
    assert chart is not None
    assert chart.log_scale  # 1 to 100: a wide range
    assert [p.item.model for p in chart.frontier] == ["m1", "m0", "m3"]
    assert [p.frontier for p in chart.points] == [True, True, False, True]
    xs = [p.x for p in chart.frontier]
    assert xs == sorted(xs)
    assert chart.points[3].y == chart.top  # 100% at the top
    assert min(p.x for p in chart.points) >= chart.left
    assert max(p.x for p in chart.points) <= chart.width - chart.right
    # the staircase: each frontier point, and a corner (next x, previous y) between two
    steps = [tuple(map(float, s.split(","))) for s in chart.staircase.split()]
    assert len(steps) == 2 * len(chart.frontier) - 1
    assert steps[1] == (round(xs[1], 1), round(chart.frontier[0].y, 1))
    assert [t.text for t in chart.y_ticks] == ["0%", "25%", "50%", "75%", "100%"]
    assert {t.text for t in chart.x_ticks} >= {"1", "10", "100"}

    narrow = pages.pareto_chart(_inputs([(40.0, 0.6), (60.0, 0.7)]), "Wh")
    assert narrow is not None
    assert not narrow.log_scale
    assert narrow.x_ticks[0].text == "0"
    one = pages.pareto_chart(_inputs([(5.0, 0.0)]), "Wh")
    assert one is not None
    assert len(one.frontier) == 1
    assert one.staircase.count(",") == 1
    assert one.points[0].y == one.height - one.bottom  # 0% at the bottom
    assert pages.pareto_chart([], "Wh") is None


def test_compare_page_draws_energy_against_quality_with_the_frontier(
    client: TestClient, quality_catalogue: dict[str, Any]
) -> None:
    response = client.get("/compare?task=text-generation&vendors=acme,globex")
    assert response.status_code == 200
    page = response.text
    chart = page[
        page.index('<svg class="chart pareto"') : page.index("</svg>", page.index("pareto"))
    ]
    assert 'role="img"' in chart
    assert "<title" in chart
    assert "<desc" in chart
    assert "<script" not in chart
    assert "href" not in chart
    points = {
        key: (r["energy_per_unit_wh"], r["quality"]["value"])
        for key, r in quality_catalogue.items()
        if key in ("small", "mid", "worse", "big")
    }
    names = {"small": "chat-1b", "mid": "chat-8b", "worse": "chat-3b", "big": "big-32b"}
    frontier = {
        names[k] for k, p in points.items() if not any(_dominates(q, p) for q in points.values())
    }
    assert "chat-3b" not in frontier  # chat-8b uses less energy and scores higher
    table = page[
        page.index('id="frontier-table"') : page.index("</table>", page.index("frontier-table"))
    ]
    listed = set(re.findall(r'<th scope="row"><a href="/models/[^"]+">([^<]+)</a>', table))
    assert listed == frontier
    assert chart.count('class="point point-frontier"') == len(frontier)
    assert chart.count('class="point"') == 4 - len(frontier)
    assert 'class="frontier-line"' in chart
    assert "chat-3b by globex" in chart  # named in the description too
    assert "bert" not in chart  # another task
    assert "gen-v1" not in chart  # another suite

    one = client.get("/compare?task=text-generation&size_class=up-to-66b").text
    assert one.count('class="point point-frontier"') == 1
    assert 'class="frontier-line"' not in one
    none = client.get("/compare?task=text-generation&size_class=over-66b").text
    assert "No current measured label with a quality figure in this group yet." in none
    assert '<svg class="chart pareto"' not in none
    suite_1 = client.get("/compare?task=text-generation&suite=1").text
    assert "Suite 1 labels carry no quality figure" in suite_1
    classes = client.get("/compare?task=text-classification&suite=2").text
    assert "BANKING77 accuracy" in classes
    assert "bert-x" in classes[classes.index('id="not-on-chart"') :]  # listed, not drawn
    images = client.get("/compare?task=image-classification&suite=2").text
    assert "measures no quality figure" in images
    exported = client.get("/compare.csv?task=text-generation&vendors=acme,globex")
    first = next(csv.DictReader(io.StringIO(exported.text)))
    assert first["suite"] == "2"
    assert first["median_quality"]


def test_hostile_quality_text_is_escaped(client: TestClient, publisher: Publisher) -> None:
    hostile = '<script>alert("q")</script><img src=x onerror=alert(1)>'
    suite_2(
        client,
        publisher,
        "chat",
        8 * B,
        0.5,
        declared=[{**DECLARED, "metric": hostile, "task": hostile, "filter": hostile[:64]}],
    )
    label = publisher.label(
        model="cls", task="text-classification", suite="2", parameter_count=B, quality=None
    )
    label["quality"] = {"unavailable_reason": hostile}
    submit(client, publisher, label)
    for path in (
        "/?task=text-generation",
        "/?task=text-classification&suite=2",
        "/models/acme/chat",
        "/models/acme/cls",
        "/vendors/acme",
        "/compare?task=text-classification&suite=2",
    ):
        page = client.get(path).text
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
    assert "&lt;script&gt;alert(&#34;q&#34;)" in client.get("/models/acme/cls").text


def test_methodology_page_lists_the_meter_bias_bounds(client: TestClient) -> None:
    page = client.get("/methodology").text
    assert "Meter bias bound" in page
    assert "6% · validated" in page  # the A100 classes, from the shared capture
    assert '15% <span class="muted">· unvalidated (default)</span>' in page
    assert "Settling" in page


def test_label_rows_hold_every_field_as_the_dataclass_would(
    client: TestClient, catalogue: dict[str, Any], db: Any
) -> None:
    """``label_row`` builds rows without the frozen dataclass's ``__init__``: every field is
    set, and the row equals the one ``__init__`` makes from the same values."""
    import dataclasses

    from sqlmodel import Session, select

    from registry.models import Label
    from registry.pages.rows import LabelRow, label_row

    names = {f.name for f in dataclasses.fields(LabelRow)}
    with Session(db) as session:
        labels = session.exec(select(Label)).all()
        assert labels
        for label in labels:
            row = label_row(label, "acme", "bert", percentile=41.0, verified_by=["a"], peers=9)
            assert set(vars(row)) == names
            assert row == LabelRow(**vars(row))
            assert row.percentile == 41.0
            assert row.verified_by == ("a",)
            assert row.energy_wh == label.energy_per_unit_wh
