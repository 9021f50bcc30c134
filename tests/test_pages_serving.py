"""What a buyer sees of a chat-serving label and of the measurement facts (issue 10): the model
page's engine, served model, load generator and levels table with the headline marked, the nodes
of a multi-node run, the meter bias bound beside the grade, the flags in plain words; the card's
concurrency and engine; chat-serving on the leaderboard and the compare page; the label view's
``serving``; hostile engine and served-model names escaped."""

from __future__ import annotations

import copy
import re
from typing import Any

import markupsafe
import pytest
from fastapi.testclient import TestClient

from registry import badges, pages
from registry.pages.facts import FLAG_WORDS
from schemas.results import fill_results
from schemas.suites import meter_bias
from tests.helpers import Publisher
from tests.test_badges import SVG_NS, assert_safe_svg
from tests.test_pages import rows, submit

B = 1_000_000_000
SERVING = {"task": "chat-serving", "suite": "2", "units_per_trial": 24, "trials": 4}
CARD = "/label/{}/{}.svg?task=chat-serving&phase=inference&suite=2"
HOSTILE_ENGINE = '<script>alert("e")</script>"><img src=x onerror=alert(1)>'
HOSTILE_SERVED = "'><svg onload=alert(2)>&amp;<b>served</b>"


def escape(text: str) -> str:
    """As the templates escape it."""
    return str(markupsafe.escape(text))


def serving_label(publisher: Publisher, model: str, **kw: Any) -> dict[str, Any]:
    """A chat-serving label (levels 1 and 8, headline 8; vllm 0.11.0 reported by the server)."""
    return publisher.label(
        model=model, **{"parameter_count": 8 * B, "power_w": 400.0, **SERVING, **kw}
    )


def set_engine(label: dict[str, Any], **engine: Any) -> dict[str, Any]:
    serving = label["benchmark"]["workload"]["serving"]
    serving["engine"] = {k: v for k, v in engine.items() if v is not None}
    return label


def level_rows(page: str) -> dict[int, str]:
    """The levels table's rows by concurrency (the row's markup)."""
    table = page[
        page.index('<table class="levels stack"') : page.index("</table>", page.index("levels"))
    ]
    found = re.findall(r'<tr data-concurrency="(\d+)"([^>]*)>(.*?)</tr>', table, re.S)
    return {int(c): attrs + body for c, attrs, body in found}


def cells(row: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", " ", c).split()[0] if c.strip() else ""
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def card_text(svg: str) -> str:
    root = assert_safe_svg(svg)
    return " | ".join("".join(t.itertext()) for t in root.iter(f"{SVG_NS}text"))


@pytest.fixture
def served(client: TestClient, publisher: Publisher, other_publisher: Publisher) -> dict[str, Any]:
    """acme serves chat-8b with vllm (the server's word); globex serves chat-7b with an engine
    it declared, without a version."""
    declared = set_engine(
        serving_label(other_publisher, "chat-7b", power_w=500.0), name="tgi", source="declared"
    )
    return {
        "acme": submit(client, publisher, serving_label(publisher, "chat-8b")),
        "globex": submit(client, other_publisher, fill_results(declared)),
    }


def test_model_page_shows_the_levels_table_with_the_headline_and_the_engine(
    client: TestClient, served: dict[str, Any]
) -> None:
    label = client.get(f"/v1/labels/{served['acme']['label_id']}").json()["label"]
    page = client.get("/models/acme/chat-8b").text
    assert (
        '<bdi class="engine">vllm 0.11.0</bdi> <span class="muted">as the server reported' in page
    )
    assert '<bdi class="served-model">acme/chat-8b</bdi>' in page
    assert "ran on the metered host" in page
    assert "<strong>headline: concurrency 8</strong>, the methodology's standard load" in page
    assert "energy per request and per token falls as more requests share the GPUs" in page
    assert "time to first token (TTFT) and inter-token latency (ITL) rise" in page
    found = level_rows(page)
    assert list(found) == [1, 8]
    assert 'class="headline"' in found[8]
    assert '<span class="tag">headline</span>' in found[8]
    assert "headline" not in found[1]
    for level in label["results"]["serving"]["levels"]:
        shown = cells(found[level["concurrency"]])
        energy, per_token = level["energy_per_unit_wh"], level["energy_per_output_token_j"]
        assert shown[:5] == [
            str(level["requests"]),
            str(level["errors"]),
            pages.format_number(energy["mean"]),
            pages.format_number(per_token["mean"]),
            pages.format_number(level["output_tokens_per_s"]),
        ]
        row = found[level["concurrency"]]
        for stats in (energy, per_token):
            ci = f"95% CI {pages.format_number(stats['ci95_low'])}\u2013"
            assert ci + pages.format_number(stats["ci95_high"]) in row
        latencies = [level[k][p] * 1000 for k in ("ttft_s", "itl_s") for p in ("p50", "p90", "p99")]
        assert shown[5:] == [pages.format_number(v) for v in latencies]
    assert 'Wh per 1,000 requests <span class="muted">at concurrency 8</span>' in page
    assert "4 trials over 2 concurrency levels" in page
    assert "over the headline level's trials" in page


def test_a_declared_engine_is_marked_declared(client: TestClient, served: dict[str, Any]) -> None:
    page = client.get("/models/globex/chat-7b").text
    assert '<bdi class="engine">tgi</bdi> <span class="tag tag-declared"' in page
    assert "named by the vendor, not reported by the server" in page
    assert "as the server reported it" not in page
    text = card_text(client.get(CARD.format("globex", "chat-7b")).text)
    assert "at concurrency 8 · tgi (declared)" in text
    view = client.get(f"/v1/labels/{served['globex']['label_id']}").json()
    assert view["serving"]["engine"] == {"name": "tgi", "version": None, "source": "declared"}


def test_card_shows_the_concurrency_and_the_engine(
    client: TestClient, served: dict[str, Any]
) -> None:
    response = client.get(CARD.format("acme", "chat-8b"))
    assert response.status_code == 200
    text = card_text(response.text)
    assert "at concurrency 8 · vllm 0.11.0" in text
    energy = text.index("Energy per 1k requests")
    assert energy < text.index("at concurrency 8") < text.index("Quality")
    assert "per output token" in text
    assert "on the 95% CI bound + 15% meter bias" in text  # H100: the unvalidated default
    assert "at concurrency 8 · vllm 0.11.0" in response.text.split("<g")[0]  # accessible name
    plain = card_text(
        badges.render_card(
            badges.CardFacts(
                **{
                    **_facts(),
                    "graded_under": "1",
                    "meter_bias_relative": None,
                }
            )
        )
    )
    assert "on the upper bound of the 95% CI" in plain
    assert "concurrency" not in plain
    long_name = "text-generation-inference-with-a-very-long-fork-name"
    declared = card_text(
        badges.render_card(
            badges.CardFacts(
                **{
                    **_facts(),
                    "serving_concurrency": 32,
                    "serving_engine": f"{long_name} 3.3.4",
                    "serving_engine_declared": True,
                }
            )
        )
    )
    # two lines; "declared" comes first, so cutting the long name never drops it
    assert "at concurrency 32 | declared engine text-generation-inference-with" in declared


def _facts() -> dict[str, Any]:
    return {
        "vendor": "acme",
        "vendor_display_name": "Acme",
        "model": "m",
        "revision": "v1",
        "task": "text-classification",
        "phase": "inference",
        "functional_unit": "1k-inferences",
        "measured": True,
        "grade": "B",
        "graded_under": "1.1",
        "percentile": None,
        "methodology_version": "1",
        "energy_mean_wh": 1.0,
        "energy_ci95_low_wh": 0.9,
        "energy_ci95_high_wh": 1.1,
        "co2e_mean_g": 0.1,
        "zone": "FR",
        "pue": 1.2,
        "intensity_g_per_kwh": 56.0,
        "carbon_basis": "location",
        "accelerator": "NVIDIA A100-SXM4-80GB",
        "accelerator_count": 1,
        "hardware_class": "nvidia-a100-sxm-80gb",
        "meter_bias_relative": 0.06,
    }


def test_model_page_shows_the_bias_bound_beside_the_grade(
    client: TestClient, publisher: Publisher
) -> None:
    h100 = submit(client, publisher, model="bert")
    a100 = submit(
        client, publisher, model="vit", hardware_class="nvidia-a100-sxm-80gb", power_w=200.0
    )
    for result, percent, validity in ((h100, "15%", "unvalidated"), (a100, "6%", "validated")):
        grade = client.get(f"/v1/labels/{result['label_id']}").json()["grade"]
        assert grade["status"] == "graded"
        model = result["model"].split("/")[1]
        page = client.get(f"/models/acme/{model}").text
        graded = pages.format_number(grade["graded_value_wh"])
        assert f"graded on {graded} Wh (CI bound + {percent} meter bias bound, {validity})" in page
        bias = page[page.index('<dd class="bias">') :]
        bias = bias[: bias.index("</dd>")]
        assert f"±{percent}, {validity}" in bias
        assert escape(meter_bias(result["hardware_class"])["source"]) in bias
        card = card_text(client.get(f"/label/acme/{model}.svg").text)
        assert f"on the 95% CI bound + {percent} meter bias" in card


def test_the_new_flags_are_shown_in_plain_words(client: TestClient, publisher: Publisher) -> None:
    flags = [
        "sampler-gap",
        "frozen-reading",
        "counter-reset",
        "unvalidated-bias",
        "transient-errors",
    ]
    label = publisher.label(model="flagged")
    label["measurement"]["flags"] = flags
    submit(client, publisher, label)
    page = client.get("/models/acme/flagged").text
    listed = page[page.index('<ul class="flags">') :]
    listed = listed[: listed.index("</ul>")]
    for flag in flags:
        assert f"<li><code>{flag}</code> {escape(FLAG_WORDS[flag])}</li>" in listed
    assert "the power sampler missed readings" in listed
    assert "an energy counter was reset during a window" in listed
    assert "not been checked against an external power meter" in listed
    assert "no window lost its reading" in listed


def test_multi_node_labels_list_their_nodes(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label(model="wide")
    hardware = label["hardware"]
    hardware["nodes"] = [
        {
            "name": f"rack-{rank}",
            "node_rank": rank,
            "accelerator": dict(hardware["accelerator"], count=4),
            "cpu": dict(hardware["cpu"]),
            "ram_bytes": 512 * 2**30,
        }
        for rank in (1, 0)
    ]
    hardware["accelerator"]["count"] = 8
    for window in [label["traces"]["idle"], *label["traces"]["trials"]]:
        first = window["components"][0]
        first["node"] = "rack-0"
        second = copy.deepcopy(first)
        second["node"] = "rack-1"
        window["components"].append(second)
    submit(client, publisher, fill_results(label))
    page = client.get("/models/acme/wide").text
    assert "8 \u00d7 <bdi>NVIDIA H100 80GB HBM3</bdi>" in page
    assert "across 2 nodes" in page
    table = page[page.index('<table class="nodes"') :]
    table = table[: table.index("</table>")]
    assert "2 nodes, every one metered; the energy is their sum" in table
    names = re.findall(r'<th scope="row"><bdi>([^<]*)</bdi>', table)
    assert names == ["rack-0", "rack-1"]  # by rank
    assert table.count("4 \u00d7 <bdi>NVIDIA H100 80GB HBM3</bdi>") == 2
    assert table.count("512 GiB") == 2
    submit(client, publisher, model="narrow")
    assert '<table class="nodes"' not in client.get("/models/acme/narrow").text


def test_hostile_engine_and_served_model_names_are_escaped(
    client: TestClient, publisher: Publisher
) -> None:
    label = set_engine(
        serving_label(publisher, "evil-serve"),
        name=HOSTILE_ENGINE,
        version='1"><script>x()</script>',
        source="server",
    )
    label["benchmark"]["workload"]["serving"]["served_model"] = HOSTILE_SERVED
    submit(client, publisher, fill_results(label))
    for path in ("/models/acme/evil-serve", "/?task=chat-serving", "/vendors/acme"):
        page = client.get(path).text
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert "<svg onload" not in page
        assert "<b>served</b>" not in page
        assert "<script>x()" not in page
    page = client.get("/models/acme/evil-serve").text
    assert escape(HOSTILE_ENGINE) in page
    assert escape(HOSTILE_SERVED) in page
    board = client.get("/?task=chat-serving").text
    assert "served by &lt;script&gt;" in board  # the concurrency's title names the engine
    svg = client.get(CARD.format("acme", "evil-serve")).text
    root = assert_safe_svg(svg)
    assert "<script" not in svg
    assert "<img" not in svg
    shown = card_text(svg)
    # too long for one line: the level, then the engine as text, cut to the card's width
    assert "at concurrency 8 | engine <script>alert(" in shown
    for element in root.iter(f"{SVG_NS}text"):
        size = float(element.get("font-size", "12"))
        assert badges.text_width("".join(element.itertext())) * size / 11 <= badges.CARD_WIDTH


def test_leaderboard_and_compare_list_chat_serving_as_a_suite_2_task(
    client: TestClient, served: dict[str, Any]
) -> None:
    home = client.get("/").text
    assert 'href="?task=chat-serving&amp;phase=inference">chat-serving' in home
    assert '<span class="suite-tag">suite 2</span>' in home
    page = client.get("/?task=chat-serving").text
    found = rows(page)
    assert {r["model"] for r in found} == {"chat-8b", "chat-7b"}
    assert {r["suite"] for r in found} == {"2"}
    assert {r["concurrency"] for r in found} == {"8"}
    assert "Wh per 1,000 requests" in page
    assert "Wh per 1,000 requests and joules per output token at each label" in page
    assert page.count(">at concurrency 8</span>") == 2
    for result in served.values():
        assert f"{pages.format_number(result['energy_per_output_token_j'])} J/token" in page
    assert (
        re.findall(r'<select id="f-suite"[^>]*>(.*?)</select>', page, re.S)[0].count("<option") == 1
    )  # only suite 2 offers chat-serving
    assert "/v1/vendors?task=chat-serving&amp;phase=inference&amp;suite=2" in page
    assert client.get("/?task=chat-serving&suite=1").status_code == 404
    assert client.get("/?task=chat-serving&suite=2").status_code == 200
    assert client.get("/v1/vendors?task=chat-serving&phase=inference&suite=2").status_code == 200

    compare = client.get("/compare?task=chat-serving&vendors=acme,globex").text
    assert '<option value="chat-serving" selected>' in compare
    assert "Score (Wh per 1,000 requests)" in compare
    assert compare.count("J/token · at concurrency 8") == 2
    assert "suite 2 · chat-serving · inference" in compare
    assert client.get("/compare?task=chat-serving&suite=1&vendors=acme").status_code == 404


def test_label_views_carry_the_serving_summary(
    client: TestClient, publisher: Publisher, served: dict[str, Any]
) -> None:
    view = client.get(f"/v1/labels/{served['acme']['label_id']}").json()
    assert view["serving"] == {
        "engine": {"name": "vllm", "version": "0.11.0", "source": "server"},
        "served_model": "acme/chat-8b",
        "headline_concurrency": 8,
        "concurrency_levels": [1, 8],
        "levels": 2,
    }
    assert served["acme"]["serving"] == view["serving"]
    listed = client.get("/v1/labels", params={"task": "chat-serving"}).json()["items"]
    assert {item["serving"]["headline_concurrency"] for item in listed} == {8}
    other = submit(client, publisher, model="plain")
    assert other["serving"] is None


def test_a_headline_other_than_the_standard_load_says_so(
    client: TestClient, publisher: Publisher
) -> None:
    label = serving_label(publisher, "chat-4")
    for trial in label["traces"]["trials"]:
        if trial["concurrency"] == 8:
            trial["concurrency"] = 4
    serving = label["benchmark"]["workload"]["serving"]
    serving.update(concurrency_levels=[1, 4], headline_concurrency=4)
    label["benchmark"]["workload"]["batch_size"] = 4
    submit(client, publisher, fill_results(label))
    page = client.get("/models/acme/chat-4").text
    assert (
        "<strong>headline: concurrency 4</strong>, the measured level closest to the "
        "methodology's standard load of 8" in page
    )
    assert list(level_rows(page)) == [1, 4]
    assert "ungraded: non-standard workload" in page
    assert "graded on" not in page  # no grade: no graded figure beside it
    assert "±15%, unvalidated" in page  # the bound is still stated
