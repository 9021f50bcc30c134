"""The API reference at /docs works with the network cut off: Swagger UI comes from the
registry itself, under the pages' Content-Security-Policy (issue 12, item 1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import Console

pytestmark = pytest.mark.browser


def test_api_docs_list_the_operations_offline(
    context: Any, console: Console, base_url: str
) -> None:
    own = urlsplit(base_url).netloc
    refused: list[str] = []

    def only_the_registry(route: Any) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:  # the network beyond the registry is cut off
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_registry)
    page = context.new_page()
    console.attach(page)
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    response = page.goto("/docs")
    assert response is not None
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock", timeout=15000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(paths) >= 20, paths
    assert "/v1/labels" in paths
    assert any(p.startswith("/v1/labels/") for p in paths)
    assert refused == []
    assert violations == []
    assert console.errors == []
