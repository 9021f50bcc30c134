"""Badges and label cards: width and layout parity with shields.io's badge-maker (run with node
from tools/badge-maker), colours, the endpoint JSON, headers and caching, which label a badge
shows, and hostile names through every badge and the card."""

from __future__ import annotations

import itertools
import json
import random
import re
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from registry import badges
from registry.api.badges import (
    MAX_VENDOR_CHARS,
    MUTABLE_CACHE_CONTROL,
    SVG_CSP,
    BadgeCache,
)
from schemas.results import fill_results
from tests.helpers import ADMIN_TOKEN, AUDIENCE, Publisher, add_key, envelope_bytes

BADGE_MAKER_DIR = Path(__file__).resolve().parent.parent / "tools" / "badge-maker"
SVG_NS = "{http://www.w3.org/2000/svg}"
# subscript two, middle dot, box-drawing bar, en dash, less-or-equal, ellipsis
SPECIAL = ["\u2082", "\u00b7", "\u2502", "\u2013", "\u2264", "\u2026"]
ENDPOINT_KEYS = {
    "schemaVersion",
    "label",
    "message",
    "color",
    "labelColor",
    "isError",
    "namedLogo",
    "logoSvg",
    "logoColor",
    "logoWidth",
    "style",
    "cacheSeconds",
}
GRADE_FILLS = {"A": "#4c1", "B": "#97ca00", "C": "#dfb317", "D": "#fe7d37", "E": "#e05d44"}
# Synthetic text-classification inference labels: about power_w x 1.46e-3 Wh per 1k inferences
# against the bands 0.28 / 0.57 / 1.13 / 2.26 Wh (methodology.json).
UNLIMITED = 1e9
POWER_FOR_GRADE = {"A": 100.0, "B": 300.0, "C": 600.0, "D": 1200.0, "E": 3000.0}


# ------------------------------------------------------------------------------------------
# badge-maker reference (node)
# ------------------------------------------------------------------------------------------


def badge_maker(items: list[dict[str, str]]) -> list[dict[str, Any]]:
    """What badge-maker makes of each {label, message, color} (tools/badge-maker/widths.mjs)."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed: the badge parity test needs Node.js", pytrace=False)
    if not (BADGE_MAKER_DIR / "node_modules" / "badge-maker").is_dir():
        pytest.fail(
            "tools/badge-maker/node_modules is missing: run "
            "`(cd tools/badge-maker && npm ci)` first (scripts/test does)",
            pytrace=False,
        )
    result = subprocess.run(
        ["node", "widths.mjs"],
        cwd=BADGE_MAKER_DIR,
        input=json.dumps(items),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out: list[dict[str, Any]] = json.loads(result.stdout)
    return out


def _sample_strings() -> list[str]:
    printable = [chr(c) for c in range(0x20, 0x7F)]
    rng = random.Random(20261125)
    alphabet = [*printable, *SPECIAL, "é", "ß", "Ω", "漢", "字", "\u0627", "\u0644", "😀", "\u00a0"]
    strings = [c for c in printable if c.strip()]
    strings += SPECIAL
    strings.append("".join(printable).strip())
    strings.append("".join(SPECIAL))
    for _ in range(300):
        strings.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    return [badges.clean_text(s) for s in strings if badges.clean_text(s)]


def _typical_messages() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = [("not labelled", "lightgrey"), ("label not found", "lightgrey")]
    for value in (0.000123, 0.0421, 0.42, 1.5, 12.4, 123.4, 9876.5):
        for unit in ("1k-inferences", "step"):
            for grade in ("A", "B", "C", "D", "E", None):
                for measured, tier in itertools.product((True, False), badges.TIERS):
                    facts = badges.BadgeFacts(grade, measured, value, value / 7, unit, tier=tier)
                    for metric in badges.METRICS:
                        text = badges.badge_text(facts, metric)
                        out.append((text.message, text.color))
    return sorted(set(out))


@cache
def _parity_cases() -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    items = [{"label": "carbon label", "message": m, "color": c} for m, c in _typical_messages()]
    items += [{"label": s, "message": s, "color": "green"} for s in _sample_strings()]
    items.append({"label": "", "message": "no label at all", "color": "red"})
    return items, badge_maker(items)


def test_text_widths_equal_badge_makers() -> None:
    items, reference = _parity_cases()
    worst = 0.0
    for item, ref in zip(items, reference, strict=True):
        layout = badges.flat_layout(item["label"], item["message"], max_text_px=UNLIMITED)
        assert layout.label == item["label"]
        assert layout.message == item["message"]
        assert badges.text_width(item["label"]) == pytest.approx(ref["labelRaw"], abs=1e-9)
        assert badges.text_width(item["message"]) == pytest.approx(ref["messageRaw"], abs=1e-9)
        if ref["labelWidth"] is not None:
            worst = max(worst, abs(layout.label_width - ref["labelWidth"]))
            assert abs(layout.label_width - ref["labelWidth"]) <= 1, item
        assert abs(layout.message_width - ref["messageWidth"]) <= 1, item
        assert abs(layout.left_width - ref["leftWidth"]) <= 1, item
        assert abs(layout.width - ref["width"]) <= 1, item
    assert worst <= 1


def test_each_special_character_has_badge_makers_width() -> None:
    items = [{"label": c, "message": c * 7, "color": "green"} for c in SPECIAL]
    for item, ref in zip(items, badge_maker(items), strict=True):
        assert badges.text_width(item["label"]) == pytest.approx(ref["labelRaw"], abs=1e-9)
        assert badges.preferred_width(item["message"]) == ref["messageWidth"]


def test_flat_badges_are_badge_makers_svg() -> None:
    """Beyond the widths: the whole SVG is the one badge-maker makes (same texts, colours)."""
    items, reference = _parity_cases()
    for item, ref in zip(items, reference, strict=True):
        ours = badges.render_flat(
            item["label"], item["message"], item["color"], max_text_px=UNLIMITED
        )
        assert ours == ref["svg"], item


# ------------------------------------------------------------------------------------------
# Pure rendering
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grade", sorted(GRADE_FILLS))
def test_colours_by_grade(grade: str) -> None:
    text = badges.badge_text(badges.BadgeFacts(grade, True, 12.4, 0.42, "1k-inferences"))
    assert text.message == f"{grade} · 12.4 Wh/1k"
    svg = badges.render_badge(text)
    assert f'fill="{GRADE_FILLS[grade]}"' in svg


def test_messages_for_metrics_phases_and_estimates() -> None:
    facts = badges.BadgeFacts("B", True, 12.4, 0.4213, "1k-inferences")
    assert badges.badge_text(facts, "energy").message == "12.4 Wh/1k"
    assert badges.badge_text(facts, "co2e").message == "0.42 g CO₂e/1k"
    training = badges.BadgeFacts("C", True, 3.25, 0.1, "step")
    assert badges.badge_text(training).message == "C · 3.25 Wh/step"
    estimated = badges.badge_text(badges.BadgeFacts(None, False, 12.4, 0.42, "1k-inferences"))
    assert (estimated.message, estimated.color) == ("estimated · 12.4 Wh/1k", "lightgrey")
    assert badges.badge_text(None) == badges.BadgeText("carbon label", "not labelled", "lightgrey")
    compromised = badges.BadgeFacts("A", True, 1.0, 1.0, "step", standing="compromised")
    assert badges.badge_text(compromised).message == "key compromised"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (0.000123, "0.00012"),
        (0.0421, "0.042"),
        (0.42, "0.42"),
        (1.5, "1.50"),
        (12.44, "12.4"),
        (123.4, "123"),
        (1234.4, "1,234"),
        (float("nan"), "?"),
    ],
)
def test_format_figure(value: float, text: str) -> None:
    assert badges.format_figure(value) == text


def test_long_text_is_cut_with_an_ellipsis() -> None:
    layout = badges.flat_layout("carbon label", "x" * 500)
    assert layout.message.endswith("…")
    assert badges.text_width(layout.message) <= badges.MAX_TEXT_WIDTH_PX


HOSTILE = [
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "' onmouseover='alert(1)",
    "Tom & Jerry &amp; &#x3c;",
    "ctrl\x00\x01\x07\x08\x0b\x1b[31m\x7f\x85\x9fchars",
    "\u202eevil\u202c gnp.exe \u2066iso\u2069 \u200fشركة",
    "]]><!-- --><![CDATA[",
    "\ufffe\uffff\ud800",
    "W" * 300,
]


def assert_safe_svg(body: str, *, allowed_href: str = AUDIENCE) -> ET.Element:
    """Well-formed XML, no markup but ours: no script, no event handler, no foreign content,
    no external reference, no raw control or bidirectional-override character."""
    assert "<script" not in body.lower()
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\u202a-\u202e\u2066-\u2069]", body)
    root = ET.fromstring(body)
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") is not None
    assert root.find(f"{SVG_NS}title") is not None
    for element in root.iter():
        local = element.tag.split("}")[-1]
        assert local not in {"script", "foreignObject", "image", "use", "iframe", "style"}
        for name, value in element.attrib.items():
            assert not name.split("}")[-1].lower().startswith("on"), (name, value)
            if name.split("}")[-1] == "href":
                assert value.startswith(allowed_href), value
            if name in {"fill", "clip-path"} and value.startswith("url("):
                assert value.startswith("url(#"), value
    return root


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_flat_badges(text: str) -> None:
    svg = badges.render_flat(text, text, "green")
    root = assert_safe_svg(svg)
    layout = badges.flat_layout(text, text)
    expected = f"{layout.label}: {layout.message}" if layout.label else layout.message
    assert root.get("aria-label") == expected
    assert int(root.get("width", "0")) <= 2 * (badges.MAX_TEXT_WIDTH_PX + 12)


@settings(max_examples=200, deadline=None)
@given(label=st.text(max_size=80), message=st.text(max_size=300))
def test_any_text_gives_well_formed_badges(label: str, message: str) -> None:
    svg = badges.render_flat(label, message, "green")
    assert_safe_svg(svg)
    layout = badges.flat_layout(label, message)
    assert badges.clean_text(layout.message) == layout.message
    assert badges.text_width(layout.message) <= badges.MAX_TEXT_WIDTH_PX


def _card_facts(**overrides: Any) -> badges.CardFacts:
    values: dict[str, Any] = {
        "vendor": "acme",
        "vendor_display_name": "Acme",
        "model": "model-a",
        "revision": "v1",
        "task": "text-classification",
        "phase": "inference",
        "functional_unit": "1k-inferences",
        "measured": True,
        "grade": "B",
        "graded_under": "1",
        "percentile": 61.7,
        "methodology_version": "1",
        "energy_mean_wh": 12.4,
        "energy_ci95_low_wh": 12.1,
        "energy_ci95_high_wh": 12.9,
        "co2e_mean_g": 0.42,
        "zone": "FR",
        "pue": 1.2,
        "intensity_g_per_kwh": 56.0,
        "carbon_basis": "location",
        "accelerator": "NVIDIA H100 80GB HBM3",
        "accelerator_count": 1,
        "hardware_class": "nvidia-h100-sxm-80gb",
        "components": (("gpu", "nvml-energy-counter"),),
        "created_at": datetime(2026, 3, 4, tzinfo=UTC),
        "keyid": "0123456789abcdef0123",
        "url": f"{AUDIENCE}/v1/labels/3f2a9c1e-0000-4000-8000-000000000000",
    }
    values.update(overrides)
    return badges.CardFacts(**values)


def test_card_shows_every_fact() -> None:
    svg = badges.render_card(_card_facts())
    root = assert_safe_svg(svg)
    texts = " | ".join("".join(t.itertext()) for t in root.iter(f"{SVG_NS}text"))
    for expected in (
        "acme/model-a",
        "by Acme",
        "Grade B",
        "better than 62% of current peers",
        "12.4 Wh",
        "12.1 \u2013 12.9 Wh",
        "CO₂e per 1k inferences",
        "0.42 g",
        "zone FR · PUE 1.20 · 56.0 g CO₂e/kWh (location)",
        "NVIDIA H100 80GB HBM3",
        "nvidia-h100-sxm-80gb",
        "measured",
        "gpu: nvml-energy-counter",
        "v1 · grading v1",
        "2026-03-04",
        "signature verified · key 0123456789ab",
    ):
        assert expected in texts, expected
    assert root.get("width") == str(badges.CARD_WIDTH)
    link = root.find(f".//{SVG_NS}a")
    assert link is not None
    assert link.get("href", "").endswith("/v1/labels/3f2a9c1e-0000-4000-8000-000000000000")


def test_card_for_estimated_and_compromised_labels() -> None:
    estimated = badges.render_card(_card_facts(measured=False, grade=None, percentile=None))
    assert "Estimated" in estimated
    assert "Grade" not in estimated
    compromised = badges.render_card(_card_facts(standing="compromised"))
    assert "Key compromised" in compromised


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_every_card_field(text: str) -> None:
    facts = _card_facts(
        vendor=text,
        vendor_display_name=text,
        model=text,
        revision=text,
        task=text,
        zone=text,
        accelerator=text,
        hardware_class=text,
        components=((text, text),),
        keyid=text,
        url=AUDIENCE + "/" + text,
    )
    root = assert_safe_svg(badges.render_card(facts))
    for element in root.iter(f"{SVG_NS}text"):
        shown = "".join(element.itertext())
        size = float(element.get("font-size", "12"))
        assert badges.text_width(shown) * size / 11 <= badges.CARD_WIDTH
    assert_safe_svg(badges.render_unlabelled_card(text, text))


@settings(max_examples=100, deadline=None)
@given(name=st.text(max_size=250), other=st.text(max_size=60))
def test_any_text_gives_well_formed_cards(name: str, other: str) -> None:
    facts = _card_facts(vendor_display_name=name, accelerator=name, model=other, revision=other)
    assert_safe_svg(badges.render_card(facts))


# ------------------------------------------------------------------------------------------
# Routes
# ------------------------------------------------------------------------------------------


def submit(
    client: TestClient, publisher: Publisher, label: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    body = publisher.envelope(label) if label is not None else publisher.envelope(**kw)
    response = client.post("/v1/labels", content=body, headers=publisher.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def estimated_label(publisher: Publisher, **kw: Any) -> dict[str, Any]:
    """A synthetic label whose energy is estimated (sampled power from a model, not a meter)."""
    label = publisher.label(**kw)

    def convert(window: dict[str, Any]) -> None:
        duration = window["t_end_s"] - window["t_start_s"]
        components = []
        for c in window["components"]:
            power = (c["counter_end_j"] - c["counter_start_j"]) / duration if duration else 0.0
            samples = [[window["t_start_s"], power], [window["t_end_s"], power]]
            components.append({"name": c["name"], "method": "estimate", "samples": samples})
        window["components"] = components

    convert(label["traces"]["idle"])
    for trial in label["traces"]["trials"]:
        convert(trial)
    label["measurement"]["components"] = [{"name": "gpu", "method": "estimate"}]
    label["measurement"]["flags"] = ["estimated"]
    return fill_results(label)


def fill_of_message(svg: str) -> str:
    root = ET.fromstring(svg)
    rects = root.findall(f"./{SVG_NS}g/{SVG_NS}rect")
    return rects[1].get("fill", "")


def message_of(svg: str) -> str:
    texts = ET.fromstring(svg).findall(f"./{SVG_NS}g/{SVG_NS}text")
    return "".join(texts[-1].itertext())


@pytest.fixture
def no_cache(client: TestClient) -> BadgeCache:
    cache = BadgeCache(ttl_s=0)
    client.app.state.badge_cache = cache  # type: ignore[attr-defined]
    return cache


def test_badge_colours_by_grade_through_the_api(
    client: TestClient, publisher: Publisher, no_cache: BadgeCache
) -> None:
    for grade, power in POWER_FOR_GRADE.items():
        result = submit(client, publisher, model=f"m-{grade}", power_w=power)
        assert result["grade"]["grade"] == grade
        svg = client.get(f"/badge/acme/m-{grade}.svg")
        assert svg.status_code == 200
        assert fill_of_message(svg.text) == GRADE_FILLS[grade]
        assert message_of(svg.text).startswith(f"{grade} · ")
        doc = client.get(f"/badge/acme/m-{grade}.json").json()
        assert doc["color"] == badges.GRADE_COLORS[grade]


def test_endpoint_json_has_exactly_the_shields_schema_keys(
    client: TestClient, publisher: Publisher
) -> None:
    submit(client, publisher, model="m1")
    for path in ("/badge/acme/m1.json", "/badge/acme/unknown.json", "/badge/nobody/x.json"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["access-control-allow-origin"] == "*"
        doc = response.json()
        assert set(doc) <= ENDPOINT_KEYS
        assert {"schemaVersion", "label", "message"} <= set(doc)
        assert doc["schemaVersion"] == 1
        assert doc["label"] == "carbon label"
    assert client.get("/badge/acme/unknown.json").json()["message"] == "not labelled"


def test_headers_etag_and_304(client: TestClient, publisher: Publisher) -> None:
    submit(client, publisher, model="m1")
    for path in ("/badge/acme/m1.svg", "/label/acme/m1.svg", "/badge/acme/m1.json"):
        response = client.get(path)
        assert response.status_code == 200
        headers = response.headers
        assert headers["cache-control"] == MUTABLE_CACHE_CONTROL
        assert headers["x-content-type-options"] == "nosniff"
        etag = headers["etag"]
        assert re.fullmatch(r'"[0-9a-f]{64}"', etag), "a strong, quoted ETag"
        if path.endswith(".svg"):
            assert headers["content-type"] == "image/svg+xml;charset=utf-8"
            assert headers["content-security-policy"] == SVG_CSP
            assert_safe_svg(response.text)
        for condition in (etag, f'"nope", {etag}', f"W/{etag}", "*"):
            again = client.get(path, headers={"If-None-Match": condition})
            assert again.status_code == 304, condition
            assert again.content == b""
            assert again.headers["etag"] == etag
            assert again.headers["cache-control"] == MUTABLE_CACHE_CONTROL
        assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_unknown_models_get_a_grey_badge(client: TestClient, publisher: Publisher) -> None:
    for path in ("/badge/acme/nothing.svg", "/badge/no-such-vendor/x.svg", "/badge/A/B.C.svg"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["cache-control"] == MUTABLE_CACHE_CONTROL
        assert message_of(response.text) == "not labelled"
        assert fill_of_message(response.text) == "#9f9f9f"
    card = client.get("/label/acme/nothing.svg")
    assert card.status_code == 200
    assert "not labelled" in card.text


def test_pinned_badge_is_immutable(client: TestClient, publisher: Publisher) -> None:
    first = submit(client, publisher, model="m1", power_w=300.0)
    pinned = client.get(f"/badge/label/{first['label_id']}.svg")
    assert pinned.status_code == 200
    # self-reported: an auditor may still verify it; immutable once verified (tests/test_audit.py)
    assert pinned.headers["cache-control"] == MUTABLE_CACHE_CONTROL
    assert pinned.headers["content-type"] == "image/svg+xml;charset=utf-8"
    assert message_of(pinned.text).startswith("B · ")
    upper = client.get(f"/badge/label/{first['label_id'].upper()}.svg")
    assert upper.text == pinned.text
    unknown = client.get("/badge/label/00000000-0000-4000-8000-000000000000.svg")
    assert unknown.status_code == 200
    assert message_of(unknown.text) == "label not found"
    assert unknown.headers["cache-control"] == MUTABLE_CACHE_CONTROL


def test_vendor_named_label_keeps_its_badges(client: TestClient) -> None:
    response = client.get("/badge/label/some-model.svg")
    assert response.status_code == 200
    assert message_of(response.text) == "not labelled"
    assert response.headers["cache-control"] == MUTABLE_CACHE_CONTROL


def test_which_label_a_badge_shows(
    client: TestClient, publisher: Publisher, no_cache: BadgeCache
) -> None:
    submit(client, publisher, model="m1", power_w=300.0)
    submit(client, publisher, model="m1", phase="training", power_w=300.0)
    latest = message_of(client.get("/badge/acme/m1.svg").text)
    assert latest.endswith("Wh/step"), "default: the most recently received current label"
    inference = message_of(client.get("/badge/acme/m1.svg?phase=inference").text)
    assert inference.endswith("Wh/1k")
    assert message_of(client.get("/badge/acme/m1.svg?task=image-classification").text) == (
        "not labelled"
    )
    co2e = message_of(client.get("/badge/acme/m1.svg?phase=inference&metric=co2e").text)
    assert re.fullmatch(r"[0-9.,]+ g CO₂e/1k", co2e)
    energy = message_of(client.get("/badge/acme/m1.svg?phase=inference&metric=energy").text)
    assert re.fullmatch(r"[0-9.,]+ Wh/1k", energy)
    # a newer revision replaces the current label of its group
    submit(client, publisher, model="m1", revision="v2", power_w=3000.0)
    assert message_of(client.get("/badge/acme/m1.svg?phase=inference").text).startswith("E · ")


def test_estimated_labels_say_so(
    client: TestClient, publisher: Publisher, no_cache: BadgeCache
) -> None:
    result = submit(client, publisher, estimated_label(publisher, model="est"))
    assert result["method"] == "estimated"
    svg = client.get("/badge/acme/est.svg").text
    assert message_of(svg).startswith("estimated · ")
    assert fill_of_message(svg) == "#9f9f9f"
    card = client.get("/label/acme/est.svg").text
    assert "Estimated" in card
    assert "Grade " not in card


def test_invalid_options_are_problems(client: TestClient) -> None:
    for query in ("metric=stars", "phase=eval", "task=" + "x" * 65):
        response = client.get(f"/badge/acme/m1.svg?{query}")
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


def test_a_new_label_shows_within_the_cache_time(client: TestClient, publisher: Publisher) -> None:
    now = [1000.0]
    cache = BadgeCache(ttl_s=10.0, clock=lambda: now[0])
    client.app.state.badge_cache = cache  # type: ignore[attr-defined]
    assert message_of(client.get("/badge/acme/m1.svg").text) == "not labelled"
    submit(client, publisher, model="m1", power_w=300.0)
    now[0] += 3.0
    cached = client.get("/badge/acme/m1.svg")
    assert message_of(cached.text) == "not labelled"
    assert cached.headers["age"] == "3"
    now[0] += 7.0
    fresh = client.get("/badge/acme/m1.svg")
    assert message_of(fresh.text).startswith("B · ")
    assert "age" not in fresh.headers


def test_one_query_per_miss_and_none_per_hit(
    client: TestClient, publisher: Publisher, db: Any
) -> None:
    submit(client, publisher, model="m1")
    client.app.state.badge_cache = BadgeCache(ttl_s=60.0)  # type: ignore[attr-defined]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db, "before_cursor_execute", count)
    try:
        assert client.get("/badge/acme/m1.svg").status_code == 200
        assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
        statements.clear()
        for _ in range(5):
            assert client.get("/badge/acme/m1.svg").status_code == 200
        assert statements == []
        client.get("/badge/%00/x.svg")
        client.get("/badge/acme/%3Cscript%3E.svg")
        assert statements == [], "names no label can have never reach the database"
    finally:
        event.remove(db, "before_cursor_execute", count)


def test_compromised_key_flags_the_badge(
    client: TestClient, publisher: Publisher, no_cache: BadgeCache
) -> None:
    result = submit(client, publisher, model="m1")
    response = client.post(
        f"/v1/vendors/acme/keys/{publisher.keyid}/revoke",
        json={"reason": "compromised", "compromised_since": "2020-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 200, response.text
    assert message_of(client.get("/badge/acme/m1.svg").text) == "key compromised"
    pinned = client.get(f"/badge/label/{result['label_id']}.svg")
    assert message_of(pinned.text) == "key compromised"
    assert pinned.headers["cache-control"] == MUTABLE_CACHE_CONTROL
    assert "Key compromised" in client.get("/label/acme/m1.svg").text


def test_card_route_shows_the_label(client: TestClient, publisher: Publisher) -> None:
    result = submit(client, publisher, model="m1", power_w=300.0)
    submit(client, publisher, model="peer", power_w=1200.0)
    response = client.get("/label/acme/m1.svg")
    assert response.status_code == 200
    root = assert_safe_svg(response.text)
    text = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG_NS}text"))
    assert "Grade B" in text
    assert "too few peers (1) for a percentile" in text  # fewer than MIN_PEERS
    for n in range(4):  # five peers: the percentile, with their number
        submit(client, publisher, model=f"more-{n}", power_w=1500.0 + n)
    other = client.get("/label/acme/peer.svg").text  # a card not drawn (nor cached) before
    other_text = " ".join(
        "".join(t.itertext()) for t in assert_safe_svg(other).iter(f"{SVG_NS}text")
    )
    assert "better than 80% of 5 current peers" in other_text
    assert "NVIDIA H100 80GB HBM3" in text
    assert f"key {publisher.keyid[:12]}" in text
    links = root.findall(f".//{SVG_NS}a")  # the sections' methods, then the label
    assert links
    assert links[-1].get("href") == f"{AUDIENCE}/v1/labels/{result['label_id']}"
    assert {a.get("href") for a in links[:-1]} <= {
        f"{AUDIENCE}/methodology#{s}"
        for s in ("protocol", "carbon", "embodied", "total", "water", "quality")
    }


def test_openapi_documents_the_badge_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/badge/{vendor}/{model}.svg",
        "/badge/{vendor}/{model}.json",
        "/label/{vendor}/{model}.svg",
        "/badge/label/{label_id}.svg",
    ):
        assert "get" in paths[path]
    for path in ("/badge/{vendor}/{model}.svg", "/badge/{vendor}/{model}.json"):
        parameters = {p["name"]: p for p in paths[path]["get"]["parameters"]}
        assert set(parameters) == {"vendor", "model", "task", "phase", "metric", "suite", "quality"}
        assert parameters["quality"]["schema"]["enum"] == ["true", "false"]
        assert "GSM8K" in parameters["quality"]["description"]
    card = {p["name"] for p in paths["/label/{vendor}/{model}.svg"]["get"]["parameters"]}
    assert card == {"vendor", "model", "task", "phase", "suite"}
    pinned = {p["name"] for p in paths["/badge/label/{label_id}.svg"]["get"]["parameters"]}
    assert pinned == {"label_id", "metric", "quality"}


def _hostile_vendor(client: TestClient, slug: str, display_name: str) -> Publisher:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    response = client.post(
        "/v1/vendors",
        json={"slug": slug, "display_name": display_name},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    key = Ed25519PrivateKey.generate()
    add_key(client, slug, token, key)
    return Publisher(slug=slug, token=token, key=key)


@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_hostile_names_through_every_badge_and_the_card(client: TestClient, index: int) -> None:
    # What the API can store: UTF-8 (no lone surrogate), and no NUL (PostgreSQL text refuses it;
    # the registry refuses it in payloads)
    hostile = HOSTILE[index].replace("\x00", "\x01").encode("utf-8", "ignore").decode()
    # Names and label text refuse control, format (bidi, zero-width) and unassigned characters
    # (tests/test_abuse.py); the renderers meet those in the tests above.
    storable = "".join(c for c in hostile if c == " " or unicodedata.category(c)[0] in "LMNPS")
    display = storable.strip()[:200] or "x"
    publisher = _hostile_vendor(client, f"evil{index}", display)
    label = publisher.label(model="Model_1.0-x")
    label["hardware"]["accelerator"]["model_name"] = storable[:128] or "x"
    body = envelope_bytes(fill_results(label), publisher.key)
    assert client.post("/v1/labels", content=body, headers=publisher.headers).status_code == 201

    card = client.get(f"/label/evil{index}/Model_1.0-x.svg")
    assert card.status_code == 200
    assert_safe_svg(card.text)
    shown = badges.fit_text(badges.clean_text(display), 1e9)
    if shown and "&" in shown:
        assert "&amp;" in card.text
    for path in (f"/badge/evil{index}/Model_1.0-x.svg", f"/badge/evil{index}/Model_1.0-x.json"):
        response = client.get(path)
        assert response.status_code == 200
        if path.endswith(".svg"):
            assert_safe_svg(response.text)
        else:
            assert set(response.json()) <= ENDPOINT_KEYS

    # the same text as path parameters, percent-encoded, on every route
    segment = quote(HOSTILE[index].encode("utf-8", "ignore"), safe="")
    routes = [
        f"/badge/{segment}/{segment}.svg",
        f"/badge/{segment}/x.json",
        f"/label/{segment}/{segment}.svg",
        f"/badge/label/{segment}.svg",
    ]
    for path in routes:
        response = client.get(path)
        if "/" in HOSTILE[index] or "\x00" in HOSTILE[index]:
            # a decoded slash splits the path (no route: 404); the app refuses NUL in URLs (400)
            assert response.status_code in {200, 400, 404, 422}
        elif len(HOSTILE[index]) > MAX_VENDOR_CHARS:
            # longer than any vendor slug can be: a 422 problem, never rendered
            assert response.status_code == 422, path
            assert response.headers["content-type"].startswith("application/problem+json")
            continue
        else:
            assert response.status_code == 200, path
        if response.status_code == 200 and path.endswith(".svg"):
            assert_safe_svg(response.text)
        elif response.status_code == 200:
            assert set(response.json()) <= ENDPOINT_KEYS


def test_script_tag_in_the_path_is_escaped(client: TestClient) -> None:
    response = client.get("/label/%3Cscript%3E/x.svg")
    assert response.status_code == 200
    assert_safe_svg(response.text)
    assert "&lt;script&gt;/x" in response.text
    badge = client.get("/badge/%3Cscript%3E/x.svg")
    assert badge.status_code == 200
    assert message_of(badge.text) == "not labelled"


# ------------------------------------------------------------------------------------------
# Quality (suite 2): the card's quality line, the badge's ?quality= and ?suite= options
# ------------------------------------------------------------------------------------------

B = 1_000_000_000


def test_badge_messages_with_and_without_quality() -> None:
    suite_1 = badges.BadgeFacts("B", True, 12.4, 0.42, "1k-inferences")
    assert badges.badge_text(suite_1).message == "B · 12.4 Wh/1k"  # as before
    assert badges.badge_text(suite_1, quality=True).message == (
        "B · 12.4 Wh/1k · quality not reported"
    )
    measured = badges.BadgeFacts(
        "B",
        True,
        39.6,
        2.66,
        "1k-requests",
        tier="verified",
        suite="2",
        quality=0.615,
        quality_metric="gsm8k-exact-match",
    )
    assert badges.badge_text(measured).message == "B · 39.6 Wh/1k requests · ✓ verified"
    assert badges.badge_text(measured, quality=True).message == (
        "B · 39.6 Wh/1k requests · 61.5% GSM8K · ✓ verified"
    )
    assert badges.badge_text(measured, "co2e", quality=True).message == (
        "2.66 g CO₂e/1k requests · 61.5% GSM8K · ✓ verified"
    )
    accuracy = badges.BadgeFacts(
        "A", True, 0.3, 0.01, "1k-inferences", suite="2", quality=0.9, quality_metric="accuracy"
    )
    assert badges.badge_text(accuracy, quality=True).message == "A · 0.30 Wh/1k · 90.0% BANKING77"
    images = badges.BadgeFacts("C", True, 0.75, 0.03, "1k-inferences", suite="2")
    assert badges.badge_text(images, quality=True).message == (
        "C · 0.75 Wh/1k · quality unavailable"
    )
    compromised = badges.BadgeFacts("B", True, 1.0, 1.0, "1k-inferences", standing="compromised")
    assert badges.badge_text(compromised, quality=True).message == "key compromised"
    assert badges.badge_text(None, quality=True).message == "not labelled"


def test_quality_messages_have_badge_makers_widths() -> None:
    facts = badges.BadgeFacts(
        "B", True, 39.6, 2.66, "1k-requests", suite="2", quality=0.615, quality_metric="accuracy"
    )
    items = [
        {
            "label": "carbon label",
            "message": badges.badge_text(f, m, quality=True).message,
            "color": "green",
        }
        for f in (facts, badges.BadgeFacts("E", True, 1234.5, 9.9, "1k-requests", suite="2"))
        for m in badges.METRICS
    ]
    for item, reference in zip(items, badge_maker(items), strict=True):
        ours = badges.render_flat(item["label"], item["message"], item["color"])
        assert ours == reference["svg"], item["message"]


def _card_text(svg: str) -> str:
    root = assert_safe_svg(svg)
    return " | ".join("".join(t.itertext()) for t in root.iter(f"{SVG_NS}text"))


def test_card_shows_quality_per_token_energy_size_class_and_suite() -> None:
    declared = badges.DeclaredFigure(
        "exact_match", 0.655, "gsm8k", "lm-evaluation-harness", "strict-match"
    )
    svg = badges.render_card(
        _card_facts(
            functional_unit="1k-requests",
            task="text-generation",
            graded_under="2",
            suite="2",
            size_class_label="≤ 20B parameters",
            quality_status="measured",
            quality_metric="gsm8k-exact-match",
            quality_value=0.415,
            quality_items=200,
            declared=(declared,),
            energy_per_output_token_j=0.45,
        )
    )
    text = _card_text(svg)
    for expected in (
        "Grade B · ≤ 20B parameters",
        "Energy per 1k requests",
        "per output token | 0.45 J/token",
        "GSM8K exact match | 41.5%",
        "quality measured in the same run on 200 items",
        "declared: gsm8k exact_match (strict-match) 65.5%",
        "suite 2 · v1 · grading v2",
    ):
        assert expected in text, expected
    assert "quality GSM8K exact match 41.5%" in svg  # the accessible name says it too

    suite_1 = _card_text(badges.render_card(_card_facts()))
    assert "Quality | not reported" in suite_1
    assert "J/token" not in suite_1
    assert "suite 1 · v1 · grading v1" in suite_1
    unavailable = _card_text(
        badges.render_card(
            _card_facts(
                suite="2",
                quality_status="unavailable",
                quality_reason="generated images have no reference labels: a fixed-size image "
                "classifier does the same work whatever the pixels show",
            )
        )
    )
    assert "Quality | unavailable | generated images have no reference labels" in unavailable
    assert "pixels" not in unavailable  # the reason, shortened
    shortened = _card_text(
        badges.render_card(
            _card_facts(grade=None, suite="2", ungraded_reason="non-standard-workload")
        )
    )
    assert "Not graded" in shortened
    assert "non-standard workload" in shortened


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_the_card_quality_fields(text: str) -> None:
    figure = badges.DeclaredFigure(text, 0.5, text, text, text)
    for status in ("measured", "unavailable"):
        facts = _card_facts(
            suite="2",
            quality_status=status,
            quality_metric=text,
            quality_value=0.5,
            quality_reason=text,
            declared=(figure, figure, figure),
            size_class_label=text,
        )
        root = assert_safe_svg(badges.render_card(facts))
        for element in root.iter(f"{SVG_NS}text"):
            size = float(element.get("font-size", "12"))
            assert badges.text_width("".join(element.itertext())) * size / 11 <= badges.CARD_WIDTH


def suite_2_label(
    publisher: Publisher, model: str, quality: float | None = 0.6, **kw: Any
) -> dict[str, Any]:
    kw = {"task": "text-generation", "power_w": 450.0, "units_per_trial": 28, **kw}
    return publisher.label(model=model, suite="2", parameter_count=8 * B, quality=quality, **kw)


def test_quality_option_changes_the_message_and_etag_and_the_default_is_unchanged(
    client: TestClient, publisher: Publisher
) -> None:
    client.app.state.badge_cache = BadgeCache(ttl_s=60.0)  # type: ignore[attr-defined]
    result = submit(client, publisher, model="m1", power_w=300.0)
    expected = f"B · {badges.format_figure(result['energy_per_unit_wh'])} Wh/1k"
    default = client.get("/badge/acme/m1.svg")
    assert message_of(default.text) == expected
    # byte for byte the flat badge of the message badges have always had
    assert default.content == badges.render_flat("carbon label", expected, "green").encode()
    explicit = client.get("/badge/acme/m1.svg?quality=false")
    assert explicit.content == default.content
    assert explicit.headers["etag"] == default.headers["etag"]
    asked = client.get("/badge/acme/m1.svg?quality=true")
    assert message_of(asked.text) == expected + " · quality not reported"
    assert asked.headers["etag"] != default.headers["etag"]
    assert client.get("/badge/acme/m1.svg").content == default.content  # separate cache entries
    assert (
        client.get(
            "/badge/acme/m1.svg?quality=true", headers={"If-None-Match": asked.headers["etag"]}
        ).status_code
        == 304
    )
    assert (
        client.get(
            "/badge/acme/m1.svg?quality=true", headers={"If-None-Match": default.headers["etag"]}
        ).status_code
        == 200
    )

    doc = client.get("/badge/acme/m1.json").json()
    asked_doc = client.get("/badge/acme/m1.json?quality=true")
    assert doc["message"] == expected
    assert asked_doc.json()["message"] == expected + " · quality not reported"
    assert set(asked_doc.json()) <= ENDPOINT_KEYS
    assert asked_doc.headers["etag"] != client.get("/badge/acme/m1.json").headers["etag"]

    pinned = client.get(f"/badge/label/{result['label_id']}.svg?quality=true")
    assert message_of(pinned.text) == expected + " · quality not reported"


def test_suite_option_and_the_newest_suite_by_default(
    client: TestClient, publisher: Publisher, no_cache: BadgeCache
) -> None:
    submit(client, publisher, model="m1", task="text-generation", units_per_trial=200)
    suite_1 = message_of(client.get("/badge/acme/m1.svg").text)
    assert suite_1.endswith(" Wh/1k")
    result = submit(client, publisher, suite_2_label(publisher, "m1"))
    share = f"{result['quality']['value'] * 100:.1f}%"
    default = message_of(client.get("/badge/acme/m1.svg").text)
    assert default == (
        f"{result['grade']['grade']} · {badges.format_figure(result['energy_per_unit_wh'])}"
        " Wh/1k requests"
    )
    assert message_of(client.get("/badge/acme/m1.svg?suite=2").text) == default
    assert message_of(client.get("/badge/acme/m1.svg?suite=1").text) == suite_1
    assert message_of(client.get("/badge/acme/m1.svg?quality=true").text) == (
        f"{default} · {share} GSM8K"
    )
    assert client.get("/badge/acme/m1.json?suite=2&quality=true").json()["message"] == (
        f"{default} · {share} GSM8K"
    )
    card = _card_text(client.get("/label/acme/m1.svg").text)
    assert f"GSM8K exact match | {share}" in card
    assert "quality measured in the same run on 200 items" in card
    assert "Grade B · ≤ 20B parameters" in card
    assert f"{badges.format_figure(result['energy_per_output_token_j'])} J/token" in card
    assert "Quality | not reported" in _card_text(client.get("/label/acme/m1.svg?suite=1").text)
    for query in ("suite=3", "suite=x", "quality=yes", "quality=1"):
        response = client.get(f"/badge/acme/m1.svg?{query}")
        assert response.status_code == 422, query
        assert response.headers["content-type"] == "application/problem+json"


def test_card_route_flags_declared_figures_and_unavailable_quality(
    client: TestClient, publisher: Publisher, no_cache: BadgeCache
) -> None:
    label = suite_2_label(publisher, "m1")
    label["quality"]["declared"] = [
        {
            "metric": "exact_match",
            "value": 0.655,
            "source": "lm-evaluation-harness",
            "task": "gsm8k",
            "filter": "strict-match",
            "file_sha256": "ab" * 32,
        }
    ]
    result = submit(client, publisher, label)
    card = _card_text(client.get("/label/acme/m1.svg").text)
    assert f"GSM8K exact match | {result['quality']['value'] * 100:.1f}%" in card
    assert "declared: gsm8k exact_match (strict-match) 65.5%" in card
    badge = message_of(client.get("/badge/acme/m1.svg?quality=true").text)
    assert "65.5" not in badge  # declared figures are never the badge's
    submit(client, publisher, suite_2_label(publisher, "cls", None, task="text-classification"))
    assert "Quality | unavailable" in _card_text(client.get("/label/acme/cls.svg").text)
    assert message_of(client.get("/badge/acme/cls.svg?quality=true").text).endswith(
        " · quality unavailable"
    )
