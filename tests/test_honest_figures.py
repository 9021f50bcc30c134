"""Figures that cannot be read the wrong way (issue 12, item 4): an estimated label's chart and
card say estimated power, the energy chart has a legend."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.helpers import Publisher
from tests.test_pages import estimated_label, submit


def test_an_estimated_label_says_estimated_power_never_measured(
    client: TestClient, publisher: Publisher
) -> None:
    submit(client, publisher, estimated_label(publisher, model="guess"))
    page = client.get("/models/acme/guess").text
    assert "Estimated power, trial by trial" in page
    assert "Estimated power (no meter read) over the idle baseline" in page
    assert "Measured power" not in page
    card = client.get("/label/acme/guess.svg").text
    assert "estimated power, no meter read:" in card
    assert ">Estimated<" in card
    assert "no grade" in card
    assert "not measured" not in card


def test_a_measured_label_keeps_its_measured_power(
    client: TestClient, publisher: Publisher
) -> None:
    submit(client, publisher, publisher.label(model="bert"))
    page = client.get("/models/acme/bert").text
    assert "Measured power, trial by trial" in page
    assert "Estimated power" not in page


def test_the_energy_chart_has_a_legend(client: TestClient, publisher: Publisher) -> None:
    submit(client, publisher, publisher.label(model="bert"))
    page = client.get("/models/acme/bert").text
    legend = re.search(r'<ul class="legend history-legend">(.*?)</ul>', page, re.S)
    assert legend is not None
    items = re.findall(r"<li>.*?</li>", legend.group(1), re.S)
    text = " ".join(re.sub(r"<[^>]+>", "", item) for item in items)
    assert "a label: energy in Wh per 1,000 inferences" in text
    assert "the current label" in text
    assert "95% confidence interval" in text
