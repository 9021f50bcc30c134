"""The application factory. Nothing is built at import time: engines are made in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from registry import pages
from registry.api import badges, health, rankings, routes
from registry.config import Settings
from registry.db import head_revision, make_engine
from registry.errors import PROBLEM_TYPES, install_handlers
from registry.metrics import Metrics, MetricsMiddleware
from registry.middleware import BodyLimitMiddleware
from registry.services.ratelimit import RateLimiter
from schemas.contract import load_schema

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {
            "type": "string",
            "enum": [f"urn:carbonlabel:problem:{kind}" for kind in PROBLEM_TYPES],
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the registry app. ``engine`` lets tests share one; otherwise the lifespan makes one."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.check_runnable()
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        url = settings.resolved_database_url()
        own_engine = engine is None
        app.state.engine = engine if engine is not None else make_engine(url)
        app.state.migrations_head = head_revision(url)
        try:
            yield
        finally:
            if own_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="carbonlabel registry",
        version="0.1.0",
        description="Signed, verifiable carbon labels for ML models.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(
        per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst
    )
    app.state.metrics = Metrics()
    install_handlers(app)
    # Badges first: they are the most requested routes, and routes are tried in order.
    app.include_router(badges.router)
    app.include_router(routes.router)
    app.include_router(rankings.router)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = PROBLEM_SCHEMA
        envelope = dict(load_schema("envelope.schema.json"))
        envelope.pop("$schema", None)
        envelope.pop("$id", None)
        components["Envelope"] = envelope
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
