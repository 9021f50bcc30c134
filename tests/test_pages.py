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
    assert "of peers" in page
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
    first = client.get("/?sort=energy").text
    second = client.get("/?sort=energy&page=2").text
    assert [r["model"] for r in rows(first)] == ["m0", "m1"]
    assert [r["model"] for r in rows(second)] == ["m2"]
    assert 'rel="next"' in first
    assert 'rel="prev"' in second
    assert client.get("/?page=banana").status_code == 200


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
    assert 'src="/badge/acme/bert.svg"' in page
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
    badge = "http://testserver/badge/acme/bert.svg"
    target = "http://testserver/models/acme/bert"
    markdown = f"[![carbon label of acme/bert]({badge})]({target})"
    assert html.escape(markdown, quote=False) in page
    html_snippet = f'<a href="{target}"><img src="{badge}" alt="carbon label of acme/bert"></a>'
    assert str(markupsafe.escape(html_snippet)) in page
    assert f".. image:: {badge}\n   :target: {target}" in page
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


# --------------------------------------------------------------------------- compare


def test_compare_page_side_by_side_with_exports(
    client: TestClient, catalogue: dict[str, Any]
) -> None:
    response = client.get("/compare?task=text-classification&phase=inference&vendors=acme,globex")
    assert response.status_code == 200
    page = response.text
    table = page[
        page.index('id="compare-table"') : page.index("</table>", page.index('id="compare-table"'))
    ]
    assert '<a href="/vendors/acme"><bdi>acme</bdi></a>' in table
    assert '<a href="/vendors/globex"><bdi>globex</bdi></a>' in table
    assert "Rank" in table
    assert "Measured share" in table
    assert "/v1/vendors?task=text-classification&amp;phase=inference&amp;format=csv" in page
    assert (
        "/compare.csv?task=text-classification&amp;phase=inference&amp;vendors=acme%2Cglobex"
        in page
    )
    api_csv = re.search(r'href="(/v1/vendors\?[^"]*format=csv)"', page)
    assert api_csv is not None
    ranking = client.get(html.unescape(api_csv.group(1)))
    assert ranking.status_code == 200
    assert ranking.headers["content-type"].startswith("text/csv")
    # the checkbox form submits vendors=a&vendors=b: the same comparison
    same = client.get(
        "/compare",
        params=[("task", "text-classification"), ("vendors", "acme"), ("vendors", "globex")],
    ).text
    assert 'id="compare-table"' in same

    exported = client.get(
        "/compare.csv?task=text-classification&phase=inference&vendors=acme,globex"
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in exported.headers["content-disposition"]
    table_rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["vendor"] for r in table_rows] == ["acme", "globex"]  # acme's median is lower
    assert table_rows[0]["rank"] == "1"
    assert table_rows[0]["task"] == "text-classification"
    assert float(table_rows[0]["score_wh"]) < float(table_rows[1]["score_wh"])
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
    for i, power in enumerate((100.0, 300.0, 900.0, 2700.0)):
        response = client.post(
            "/v1/labels",
            content=publisher.envelope(model=f"m{i}", power_w=power),
            headers=publisher.headers,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["label_id"])
    expected = sorted(client.get(f"/v1/labels/{i}").json()["grade"]["percentile"] for i in ids)
    page = client.get("/", params={"task": "text-classification", "phase": "inference"}).text
    shown = sorted(float(v) for v in re.findall(r"better than ([0-9.]+)% of peers", page))
    assert shown == [round(v) for v in expected]
