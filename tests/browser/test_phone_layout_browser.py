"""On a phone, no page scrolls sideways: tables become one card per row, charts fit the screen
(issue 12, item 8); and the model page shows its labels before the README badge box."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Console

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    "/compare?task=text-classification&phase=inference",
    "/methodology",
    "/vendors/northwind-ai",
    "/models/northwind-ai/nw-chat-8b",  # a served model: the concurrency-levels table
    "/models/contoso-labs/cl-llm-7b",
]
OVERFLOWING = """() => ({
  wide: Array.from(document.querySelectorAll(".table-wrap, .chart-wrap"))
    .filter((w) => w.scrollWidth > w.clientWidth + 1)
    .map((w) => [w.className, (w.querySelector("table, svg") || {}).id || "", w.scrollWidth]),
  page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
  labelled: Array.from(document.querySelectorAll("table.stack tbody td:not(.empty)"))
    .filter((td) => !td.dataset.title).length,
})"""


@pytest.mark.parametrize("path", PAGES)
def test_no_page_scrolls_sideways_on_a_phone(
    phone_context: Any, console: Console, path: str
) -> None:
    page = phone_context.new_page()
    console.attach(page)
    response = page.goto(path)
    assert response is not None
    assert response.status == 200
    page.wait_for_load_state("networkidle")
    found = page.evaluate(OVERFLOWING)
    assert found["wide"] == [], found
    width, client = found["page"]
    assert width <= client + 1
    assert found["labelled"] == 0  # every stacked value says what it is
    assert console.errors == []


def test_the_model_page_shows_the_label_before_the_readme_box(context: Any) -> None:
    page = context.new_page()
    page.goto("/models/contoso-labs/cl-llm-7b")
    label = page.locator(".label-section").first.bounding_box()
    readme = page.locator("#embed-h").bounding_box()
    assert label is not None
    assert readme is not None
    assert label["y"] < readme["y"]
