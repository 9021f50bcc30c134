"""The interactive API reference at ``/docs``: Swagger UI served by the registry itself.

The assets come from a pinned Python package (``fastapi-offline``, which carries Swagger UI's
``swagger-ui-dist`` build) and are mounted at :data:`ASSETS_URL`, so the page works without
internet and under the pages' Content-Security-Policy: the page loads only its own scripts,
styles and ``/openapi.json``. The start-up script is ``web/static/api-docs.js`` (no inline
script). ``/redoc`` is not served.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse

from registry.pages.common import render, router

ASSETS_URL = "/static/swagger-ui"
"""Where the app mounts :func:`assets_dir`."""


def assets_dir() -> Path:
    """Swagger UI's files (``swagger-ui-bundle.js``, ``swagger-ui.css``) as packaged."""
    return Path(str(files("fastapi_offline") / "static"))


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """The API reference: every operation of ``/openapi.json``, to read and to try."""
    return render(request, "api_docs.html", {"title": "API reference", "assets": ASSETS_URL})
