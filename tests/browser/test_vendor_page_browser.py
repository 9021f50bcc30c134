"""The vendor page at a desktop width and on a phone: no badge scaled or cut off, no table wider
than its container (no sideways scroll), and the grade column never one word per line
(issue 12, item 2)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Console

pytestmark = pytest.mark.browser

MEASURE = """() => {
  const lines = (el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top))).size;
  };
  return {
    badges: Array.from(document.querySelectorAll("img.badge")).map((img) => {
      const box = img.getBoundingClientRect();
      const cell = img.closest("th, td").getBoundingClientRect();
      return {src: img.getAttribute("src"), rendered: box.width, svg: img.naturalWidth,
              inside: box.left >= cell.left - 0.5 && box.right <= cell.right + 0.5,
              complete: img.complete};
    }),
    wraps: Array.from(document.querySelectorAll(".table-wrap")).map((w) => ({
      table: w.querySelector("table").className, scroll: w.scrollWidth, client: w.clientWidth})),
    page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
    percentiles: Array.from(document.querySelectorAll(".vendor-models .percentile")).map(
      (p) => ({text: p.textContent.trim(), lines: lines(p)})),
  };
}"""


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_vendor_page_fits_without_cut_off_badges_or_tables(
    context: Any, phone_context: Any, console: Console, viewport: str
) -> None:
    page = (context if viewport == "desktop" else phone_context).new_page()
    console.attach(page)
    page.goto("/vendors/northwind-ai")
    page.wait_for_load_state("networkidle")
    found = page.evaluate(MEASURE)
    assert len(found["badges"]) >= 5
    for badge in found["badges"]:
        assert badge["complete"], badge
        assert badge["svg"] > 0, badge
        assert abs(badge["rendered"] - badge["svg"]) < 0.5, badge  # drawn at its own width
        assert badge["inside"], badge  # and inside its cell, not spilling over the next
    for wrap in found["wraps"]:
        assert wrap["scroll"] <= wrap["client"] + 1, wrap  # no sideways scroll in a table
    width, client = found["page"]
    assert width <= client + 1
    assert found["percentiles"]
    for percentile in found["percentiles"]:
        # "better than 75% of peers" on at most two lines, never one word per line
        assert percentile["lines"] <= 2, percentile
    assert console.errors == []
