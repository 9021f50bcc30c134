"""/docs: the API reference served from the registry's own copy of Swagger UI, never a CDN
(issue 12, item 1; the browser test in tests/browser/ opens it with the network cut off)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_page_loads_only_the_registrys_own_assets(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    html = response.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    # every asset is a path on this registry: no scheme, no host
    assert all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    assert "<script>" not in html  # no inline script (the CSP would refuse it)
    for asset in ("/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css"):
        assert asset in sources
        served = client.get(asset)
        assert served.status_code == 200
        assert len(served.content) > 100_000  # the real bundle, not a stub
    start = client.get("/static/api-docs.js")
    assert start.status_code == 200
    assert "SwaggerUIBundle" in start.text
    assert "/v1/labels" in client.get("/openapi.json").json()["paths"]


def test_redoc_is_not_served(client: TestClient) -> None:
    # it would need a CDN or inline styles; /docs is the one reference
    assert client.get("/redoc").status_code == 404
