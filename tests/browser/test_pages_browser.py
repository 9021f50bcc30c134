"""The web pages in a real headless Chromium: no console error, accessible structure, filters and
sorting, the suite selector and the quality column, the energy-against-quality chart of the compare
page, the chat-serving levels on the model page, the copy button, badges at their declared size,
desktop and phone layouts (no horizontal scrolling), and the screenshots in docs/screenshots/."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.synthetic import make_label
from tests.browser.conftest import PHONE, PUBLIC_URL, Console
from tests.helpers import ADMIN_TOKEN, add_key, envelope_bytes

pytestmark = [pytest.mark.browser, pytest.mark.server]

PAGES = {
    "leaderboard": "/?task=text-generation",
    "model": "/models/northwind-ai/nw-chat-8b",
    "vendor": "/vendors/northwind-ai",
    "compare": "/compare?task=text-generation&phase=inference"
    "&vendors=northwind-ai,contoso-labs,fabrikam",
    "methodology": "/methodology",
}

ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  if (document.documentElement.lang !== "en") problems.push("html lang");
  for (const tag of ["header", "nav", "main", "footer"]) {
    if (!document.querySelector(tag)) problems.push("no <" + tag + ">");
  }
  if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
  const skip = document.querySelector("a.skip-link");
  if (!skip || !document.querySelector(skip.getAttribute("href"))) problems.push("skip link");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    if (!el.labels || el.labels.length === 0) problems.push("unlabelled " + el.outerHTML);
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("img without alt " + img.src);
  }
  for (const table of document.querySelectorAll("table")) {
    if (!table.querySelector("caption")) problems.push("table without caption");
  }
  for (const th of document.querySelectorAll("thead th")) {
    if (th.getAttribute("scope") !== "col") problems.push("thead th without scope");
  }
  return problems;
}"""

NO_HORIZONTAL_SCROLL = (
    "() => document.documentElement.scrollWidth <= window.innerWidth"
    " && document.body.scrollWidth <= window.innerWidth"
)

LEADERBOARD_ROWS = """() => Array.from(document.querySelectorAll("#leaderboard tbody tr[data-label-id]"))
  .map(tr => ({vendor: tr.dataset.vendor, model: tr.dataset.model, hardware: tr.dataset.hardware,
               zone: tr.dataset.zone, energy: parseFloat(tr.dataset.energy),
               co2e: parseFloat(tr.dataset.co2e)}))"""


def open_page(context: Any, console: Console, path: str) -> Any:
    page = context.new_page()
    console.attach(page)
    response = page.goto(path, wait_until="networkidle")
    assert response is not None
    assert response.status == 200, f"{path}: {response.status}"
    return page


def all_images_loaded(page: Any) -> list[str]:
    """The sources of images that did not load (broken or zero-sized)."""
    return list(
        page.evaluate(
            """() => Array.from(document.images)
                 .filter(img => !img.complete || img.naturalWidth === 0)
                 .map(img => img.currentSrc || img.src)"""
        )
    )


@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_cleanly_on_desktop(
    name: str, context: Any, console: Console, screenshots_dir: Path
) -> None:
    page = open_page(context, console, PAGES[name])
    assert console.errors == []
    assert page.evaluate(ACCESSIBILITY_PROBLEMS) == []
    assert all_images_loaded(page) == []
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    page.screenshot(
        path=str(screenshots_dir / f"{name}.png"), full_page=True, animations="disabled"
    )


@pytest.mark.parametrize("name", list(PAGES))
def test_page_fits_a_phone(
    name: str, phone_context: Any, console: Console, screenshots_dir: Path
) -> None:
    page = open_page(phone_context, console, PAGES[name])
    assert page.viewport_size == PHONE
    assert console.errors == []
    overflowing = page.evaluate(
        """() => Array.from(document.querySelectorAll("body *"))
             .filter(el => !el.closest(".table-wrap, .chart-wrap")
                           && el.getBoundingClientRect().right > window.innerWidth + 1)
             .map(el => el.tagName + "." + el.className)"""
    )
    assert overflowing == []
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    if name == "leaderboard":
        page.screenshot(
            path=str(screenshots_dir / "leaderboard-phone.png"),
            full_page=True,
            animations="disabled",
        )


SERVING_PAGES = ("/models/contoso-labs/cl-llm-32b", "/models/fabrikam/fab-llm-70b")

SERVING_FACTS = """() => {
  const table = document.querySelector("table.levels");
  const wrap = table.closest(".table-wrap");
  return {
    levels: Array.from(table.querySelectorAll("tbody tr")).map(tr => tr.dataset.concurrency),
    headline: Array.from(table.querySelectorAll("tbody tr.headline")).map(tr => tr.dataset.concurrency),
    note: document.querySelector(".headline-note").textContent,
    engine: document.querySelector("bdi.engine").textContent,
    nodes: document.querySelectorAll("table.nodes tbody tr").length,
    wrapped: wrap !== null && wrap.getBoundingClientRect().right <= window.innerWidth + 1,
  };
}"""


@pytest.mark.parametrize("path", SERVING_PAGES)
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_chat_serving_model_page(
    path: str, viewport: str, context: Any, phone_context: Any, console: Console
) -> None:
    """The levels table (the headline marked), the engine and, for a multi-node label, the
    nodes; on a phone the page does not scroll sideways (the tables scroll inside their box)."""
    page = open_page(context if viewport == "desktop" else phone_context, console, path)
    facts = page.evaluate(SERVING_FACTS)
    assert facts["levels"] == ["1", "8", "32"]
    assert facts["headline"] == ["8"]
    assert "headline: concurrency 8, the methodology's standard load" in facts["note"]
    assert facts["engine"] in ("text-generation-inference 3.3.4", "vllm 0.11.0")
    assert facts["nodes"] == (2 if path.endswith("fab-llm-70b") else 0)
    assert facts["wrapped"]
    assert page.evaluate(ACCESSIBILITY_PROBLEMS) == []
    assert all_images_loaded(page) == []
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    assert console.errors == []


def test_filters_change_the_table(context: Any, console: Console) -> None:
    page = open_page(context, console, "/?task=text-classification")
    before = page.evaluate(LEADERBOARD_ROWS)
    assert len({r["hardware"] for r in before}) > 1

    page.select_option("#f-hardware", "nvidia-l4-24gb")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    after = page.evaluate(LEADERBOARD_ROWS)
    assert "hardware=nvidia-l4-24gb" in page.url
    assert after
    assert len(after) < len(before)
    assert {r["hardware"] for r in after} == {"nvidia-l4-24gb"}

    page.select_option("#f-hardware", "")
    page.select_option("#f-zone", "FR")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    zoned = page.evaluate(LEADERBOARD_ROWS)
    assert zoned
    assert {r["zone"] for r in zoned} == {"FR"}

    with page.expect_navigation():
        page.click("nav.tabs >> text=image-classification")
    images = page.evaluate(LEADERBOARD_ROWS)
    assert {r["model"] for r in images}.isdisjoint({r["model"] for r in before})
    assert console.errors == []


def test_sorting_changes_the_order(context: Any, console: Console) -> None:
    page = open_page(context, console, "/?task=text-classification")
    with page.expect_navigation():
        page.click("#leaderboard thead a[data-sort=co2e]")
    ascending = [r["co2e"] for r in page.evaluate(LEADERBOARD_ROWS)]
    assert len(ascending) > 1
    assert ascending == sorted(ascending)
    assert page.get_attribute("#leaderboard thead th[aria-sort]", "aria-sort") == "ascending"

    with page.expect_navigation():
        page.click("#leaderboard thead a[data-sort=co2e]")
    descending = [r["co2e"] for r in page.evaluate(LEADERBOARD_ROWS)]
    assert descending == sorted(ascending, reverse=True)
    assert page.get_attribute("#leaderboard thead th[aria-sort]", "aria-sort") == "descending"

    with page.expect_navigation():
        page.click("#leaderboard thead a[data-sort=vendor]")
    vendors = [r["vendor"] for r in page.evaluate(LEADERBOARD_ROWS)]
    assert vendors == sorted(vendors)
    assert console.errors == []


LEADERBOARD_QUALITY = """() => Array.from(document.querySelectorAll("#leaderboard tbody tr[data-label-id]"))
  .map(tr => ({model: tr.dataset.model, suite: tr.dataset.suite, sizeClass: tr.dataset.sizeClass,
               quality: tr.dataset.quality === "" ? null : parseFloat(tr.dataset.quality)}))"""


def test_suite_selector_size_classes_and_the_quality_column(context: Any, console: Console) -> None:
    page = open_page(context, console, "/?task=text-generation")
    suite_2 = page.evaluate(LEADERBOARD_QUALITY)
    assert {r["suite"] for r in suite_2} == {"2"}, "default: the newest suite with labels"
    assert page.input_value("#f-suite") == "2"
    assert {r["sizeClass"] for r in suite_2} == {"up-to-20b", "up-to-66b", "over-66b"}
    assert all(r["quality"] is not None for r in suite_2)

    with page.expect_navigation():
        page.click("#leaderboard thead a[data-sort=quality]")
    with page.expect_navigation():
        page.click("#leaderboard thead a[data-sort=quality]")
    qualities = [r["quality"] for r in page.evaluate(LEADERBOARD_QUALITY)]
    assert qualities == sorted(qualities, reverse=True)

    page.select_option("#f-size", "up-to-20b")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert {r["sizeClass"] for r in page.evaluate(LEADERBOARD_QUALITY)} == {"up-to-20b"}

    page.select_option("#f-size", "")
    page.select_option("#f-suite", "1")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    suite_1 = page.evaluate(LEADERBOARD_QUALITY)
    assert suite_1
    assert {r["suite"] for r in suite_1} == {"1"}
    assert all(r["quality"] is None for r in suite_1)
    assert page.locator("#leaderboard .not-reported").count() == len(suite_1)
    assert page.locator("#f-size").count() == 0  # suite 1 has no size classes
    assert console.errors == []


PARETO = """() => {
  const svg = document.querySelector("svg.pareto");
  const box = svg.getBoundingClientRect();
  return {
    role: svg.getAttribute("role"),
    title: svg.querySelector("title").textContent,
    desc: svg.querySelector("desc").textContent,
    frontierPoints: svg.querySelectorAll("circle.point-frontier").length,
    otherPoints: svg.querySelectorAll("circle.point:not(.point-frontier)").length,
    labels: Array.from(svg.querySelectorAll("text.point-label")).map(t => t.textContent),
    line: svg.querySelectorAll("polyline.frontier-line").length,
    frontierRows: Array.from(document.querySelectorAll("#frontier-table tbody th a"))
      .map(a => a.textContent),
    width: box.width,
    height: box.height,
  };
}"""


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_compare_page_draws_the_pareto_frontier(
    viewport: str, context: Any, phone_context: Any, console: Console
) -> None:
    page = open_page(context if viewport == "desktop" else phone_context, console, PAGES["compare"])
    chart = page.evaluate(PARETO)
    assert chart["role"] == "img"
    assert "Pareto frontier" in chart["title"]
    # the demo: five models on the frontier, two below it (tests/test_demo.py)
    assert chart["frontierPoints"] == 5
    assert chart["otherPoints"] == 2
    assert chart["line"] == 1
    assert sorted(chart["frontierRows"]) == sorted(
        ["nw-chat-1b", "nw-chat-8b", "fab-instruct-14b", "cl-llm-32b", "fab-llm-70b"]
    )
    assert set(chart["frontierRows"]) <= set(chart["labels"])
    assert "cl-chat-3b" in chart["labels"]
    for name in chart["frontierRows"]:
        assert name in chart["desc"]
    assert chart["width"] > 300
    assert chart["height"] > 150
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    assert console.errors == []


def test_copy_button_puts_the_snippet_on_the_clipboard(context: Any, console: Console) -> None:
    page = open_page(context, console, PAGES["model"])
    for snippet in ("markdown", "html", "rst"):
        button = page.locator(f"button.copy[data-copy-target=snippet-{snippet}]")
        assert button.is_visible()
        button.click()
        page.wait_for_function(
            "id => document.querySelector(`button[data-copy-target=${id}]`).dataset.copied",
            arg=f"snippet-{snippet}",
        )
        expected = page.input_value(f"#snippet-{snippet}")
        assert page.evaluate("() => navigator.clipboard.readText()") == expected
    assert page.input_value("#snippet-markdown").startswith("[![carbon label of northwind-ai/")
    assert "copied" in page.text_content(".copy-status")
    assert console.errors == []


def test_pages_work_without_javascript(browser: Any, base_url: str) -> None:
    context = browser.new_context(java_script_enabled=False, base_url=base_url)
    try:
        page = context.new_page()
        page.goto(PAGES["model"])
        assert not page.locator("button.copy").first.is_visible()  # only JavaScript shows them
        snippet = page.locator("#snippet-markdown")
        snippet.select_text()
        assert page.evaluate("() => window.getSelection().toString()") or snippet.input_value()
        assert page.locator("svg.timeline").count() >= 1
        assert page.locator("svg.history").count() >= 1

        page.goto("/?task=text-classification&sort=-energy")
        energies = [
            float(e)
            for e in page.eval_on_selector_all(
                "#leaderboard tbody tr", "rows => rows.map(r => r.dataset.energy)"
            )
        ]
        assert energies == sorted(energies, reverse=True)
    finally:
        context.close()


def _declared_size(svg_text: str) -> tuple[float, float]:
    root = ET.fromstring(svg_text)
    assert re.sub(r"\{.*\}", "", root.tag) == "svg"
    return float(root.attrib["width"]), float(root.attrib["height"])


@pytest.mark.parametrize(
    ("path", "selector"),
    [
        (PAGES["model"], "#model-badge"),
        (PAGES["model"], "img.label-card"),
        (PAGES["vendor"], "img.badge"),
    ],
)
def test_badge_renders_at_its_declared_size(
    path: str, selector: str, context: Any, console: Console
) -> None:
    page = open_page(context, console, path)
    image = page.locator(selector).first
    image.scroll_into_view_if_needed()
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel); return i.complete && i.naturalWidth > 0 }",
        arg=selector,
    )
    src = image.evaluate("img => img.currentSrc")
    response = page.request.get(src)
    assert response.status == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    width, height = _declared_size(response.text())
    natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert natural == [round(width), round(height)]
    if selector != "img.label-card":  # the card may shrink to fit its column; badges never do
        box = image.bounding_box()
        assert box is not None
        assert abs(box["width"] - width) <= 1
        assert abs(box["height"] - height) <= 1
    assert console.errors == []


# Markup only: the API refuses control and bidi characters in names (tests/test_abuse.py);
# tests/test_pages.py renders names stored with them.
HOSTILE_NAME = (
    "<script>alert(\"x\")</script>\"><img src=x onerror=alert(1)>' onmouseover='alert(2)' evil"
)


def test_hostile_names_render_as_text(context: Any, console: Console, base_url: str) -> None:
    """A vendor and label full of markup: shown as text, nothing runs (on a task and phase that
    the other tests and the screenshots do not show)."""
    with httpx.Client(base_url=base_url) as client:
        created = client.post(
            "/v1/vendors",
            json={"slug": "evil", "display_name": HOSTILE_NAME},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        key = Ed25519PrivateKey.generate()
        add_key(client, "evil", token, key, audience=PUBLIC_URL)
        label = make_label(
            vendor="evil",
            model="x",
            registry=PUBLIC_URL,
            task="image-classification",
            phase="training",
            units_per_trial=20,
        )
        label["hardware"]["accelerator"]["model_name"] = "<img src=y onerror=alert(3)>"
        label["traces"]["idle"]["components"][0]["device"] = '"><svg onload=alert(4)>'
        submitted = client.post(
            "/v1/labels",
            content=envelope_bytes(label, key),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert submitted.status_code == 201, submitted.text

    dialogs: list[str] = []
    for path in (
        "/vendors/evil",
        "/models/evil/x",
        "/?task=image-classification&phase=training",
        "/compare?task=image-classification&phase=training&vendors=evil,northwind-ai",
    ):
        page = context.new_page()
        console.attach(page)
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        response = page.goto(path, wait_until="networkidle")
        assert response is not None
        assert response.status == 200, path
        assert page.locator("img[src=x], img[src=y], svg[onload]").count() == 0
        if path == "/vendors/evil":
            assert page.inner_text("h1") == HOSTILE_NAME.replace("\x07", "")
        page.close()
    assert dialogs == []
    assert console.errors == []
