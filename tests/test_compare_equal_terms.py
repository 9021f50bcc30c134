"""The compare page compares like with like (issue 12, item 5): one hardware class by default,
the one with the most measured labels of the group, and it says so; ``hardware=all`` compares
across classes and warns."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import Publisher
from tests.test_pages import catalogue, submit  # noqa: F401  (the fixture)

H100 = "nvidia-h100-sxm-80gb"
L4 = "nvidia-l4-24gb"


def _csv_rows(client: TestClient, page: str) -> list[dict[str, str]]:
    href = re.search(r'href="(/compare\.csv\?[^"]*)"', page)
    assert href is not None
    return list(csv.DictReader(io.StringIO(client.get(html.unescape(href.group(1))).text)))


def test_compare_defaults_to_the_busiest_hardware_class_and_says_so(
    client: TestClient,
    catalogue: dict[str, Any],  # noqa: F811  (the fixture imported above)
) -> None:
    page = client.get("/compare?task=text-classification&phase=inference").text
    # acme's bert and globex's big are on the H100 class, acme's tiny alone on the L4
    assert f"only labels measured on <strong>{H100}</strong> are compared" in page
    assert "chosen by default" in page
    assert f'<option value="{H100}" selected>' in page
    rows = _csv_rows(client, page)
    assert {r["hardware_class"] for r in rows} == {H100}
    assert {r["vendor"] for r in rows} == {"acme", "globex"}
    # acme's score there is bert's alone: tiny, on the L4, is not compared
    acme = next(r for r in rows if r["vendor"] == "acme")
    assert acme["models"] == "1"


def test_all_hardware_classes_on_request_with_a_warning(
    client: TestClient,
    catalogue: dict[str, Any],  # noqa: F811  (the fixture imported above)
) -> None:
    page = client.get("/compare?task=text-classification&phase=inference&hardware=all").text
    assert "All hardware classes together" in page
    assert '<option value="all" selected>' in page
    rows = _csv_rows(client, page)
    assert {r["hardware_class"] for r in rows} == {""}  # the whole group
    acme = next(r for r in rows if r["vendor"] == "acme")
    assert acme["models"] == "2"  # bert and tiny


def test_the_default_class_follows_the_labels(client: TestClient, publisher: Publisher) -> None:
    for n in range(3):
        submit(client, publisher, model=f"l4-{n}", hardware_class=L4, power_w=60.0 + n)
    submit(client, publisher, model="h100", power_w=300.0)
    page = client.get("/compare?task=text-classification&phase=inference").text
    assert f"only labels measured on <strong>{L4}</strong>" in page


def test_the_methodology_page_explains_each_band_set_in_plain_words(client: TestClient) -> None:
    page = html.unescape(client.get("/methodology").text)
    plain = re.findall(r'<ul class="plain-bands">(.*?)</ul>', page, re.S)
    assert len(plain) == 2  # suite 1 and suite 2
    items = re.findall(r"<li>(.*?)</li>", plain[0], re.S)
    classification = next(i for i in items if i.startswith("text-classification inference:"))
    # each letter with its figures, in the unit, against the median the set is centred on
    assert "A under 0.283 Wh per 1,000 inferences (less than 0.35 times the median)" in (
        classification
    )
    assert "E 2.26 Wh per 1,000 inferences or more (2.8 times the median or more)" in (
        classification
    )
    assert "Centred on 0.800 Wh per 1,000 inferences, the median published figure" in (
        classification
    )
    assert "the same figures for every hardware class" in classification
    suite_2 = re.findall(r"<li>(.*?)</li>", plain[1], re.S)
    assert any("models" in item for item in suite_2)  # size classes named
