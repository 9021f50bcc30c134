"""The app's routes are its own (registry/main.py include_flat): one list, matched once per
request, with the paths, methods and OpenAPI that the routers declare."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from registry import pages
from registry.api import auditors, badges, health, log, rankings, routes, series
from registry.config import Settings
from registry.main import create_app, include_flat

ROUTERS = (badges, routes, rankings, series, auditors, log, health, pages)


def test_every_router_route_is_one_of_the_apps_in_order(settings: Settings) -> None:
    app = create_app(settings)
    api_routes = [r for r in app.routes if isinstance(r, APIRoute)]
    declared = [r for module in ROUTERS for r in module.router.routes]
    assert api_routes == declared
    # nothing nested: every API route is matched directly by the app's router
    assert all(
        isinstance(r, APIRoute) or type(r).__name__ in {"Route", "Mount"} for r in app.routes
    )


def test_flat_routes_answer_and_document_as_included_ones(settings: Settings) -> None:
    app = create_app(settings)
    paths = app.openapi()["paths"]
    assert paths["/v1/labels/{label_id}"]["get"]["tags"] == ["v1"]
    assert paths["/badge/{vendor}/{model}.svg"]["get"]["tags"] == ["badges"]
    # the pages stay out of the schema
    assert "/" not in paths
    assert "/vendors/{vendor}" not in paths
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        answer = client.post("/healthz")
        assert answer.status_code == 405
        assert "GET" in answer.headers["allow"]


def test_a_router_with_dependencies_is_refused() -> None:
    router = APIRouter(dependencies=[Depends(lambda: None)])
    with pytest.raises(ValueError, match="without dependencies"):
        include_flat(FastAPI(), router)
