"""The application factory. Nothing is built at import time: engines are made in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from registry import gc_tuning, http_cache, pages
from registry.api import auditors, badges, health, log, rankings, routes, series
from registry.config import Settings, SettingsError
from registry.db import head_revision, make_engine
from registry.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPES, install_handlers
from registry.metrics import DatabaseCollector, LookupCollector, Metrics, MetricsMiddleware
from registry.middleware import BodyLimitMiddleware
from registry.services import stats
from registry.services.ratelimit import (
    LIMITED_PREFIX,
    Limit,
    RateLimitMiddleware,
    make_rate_limiter,
)
from registry.services.translog import CheckpointSigner
from schemas.contract import load_schema

logger = logging.getLogger(__name__)

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


def _log_signer(settings: Settings) -> CheckpointSigner:
    """The checkpoint signer; a demo without a configured key gets a throwaway one."""
    try:
        key = settings.log_signer()
    except SettingsError:
        if not settings.demo:
            raise
        logger.warning("demo: no log signing key configured; checkpoints use a throwaway key")
        key = Ed25519PrivateKey.generate()
    return CheckpointSigner(settings.resolved_log_origin(), key)


PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
NO_DATABASE_PATHS = ("/healthz", "/metrics")


def document_common_problems(schema: dict[str, Any]) -> None:
    """Add to every operation the problems that a request can meet outside its route: 400 (a NUL
    in the URL, a body that is not JSON), 422 (the framework's validation: a problem here, not
    FastAPI's default schema), 413 (a body over the limit), 429 (the rate limits of ``/v1``), 503
    (the database unavailable) and 500 (a bug)."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            statuses = ["400", "500"]
            if operation.get("parameters") or "requestBody" in operation:
                statuses.append("422")
            if "requestBody" in operation:
                statuses.append("413")
            if path == LIMITED_PREFIX or path.startswith(LIMITED_PREFIX + "/"):
                statuses.append("429")
            if path not in NO_DATABASE_PATHS:
                statuses.append("503")
            for status in statuses:
                documented = responses.get(status)
                if documented is None or "HTTPValidationError" in str(documented):
                    responses[status] = {
                        "description": "RFC 9457 problem",
                        "content": PROBLEM_CONTENT,
                    }
    if "HTTPValidationError" not in str(schema.get("paths")):
        components = schema.get("components", {}).get("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)


def _metrics(app: FastAPI, settings: Settings) -> Metrics:
    """The app's metrics, with the collectors read at scrape time: the registry-wide gauges from
    the database, the badge and page caches' look-ups (both caches are made later)."""
    metrics = Metrics()
    metrics.add(
        DatabaseCollector(
            lambda: stats.read_stats(app.state.engine), ttl_s=settings.metrics_cache_ttl_s
        )
    )
    metrics.add(
        LookupCollector(
            "carbonlabel_badge_cache_lookups",
            "Badge and card look-ups in this process's rendered-badge cache, by result: hit "
            "(served from memory) or miss (rendered from the database).",
            lambda: getattr(getattr(app.state, "badge_cache", None), "lookups", None),
            ("hit", "miss"),
        )
    )
    metrics.add(
        LookupCollector(
            "carbonlabel_http_cache_lookups",
            "Cached GETs of pages and API reads in this process, by result: not-modified "
            "(If-None-Match matched: 304 before any rendering), hit (a stored answer served), "
            "miss (rendered).",
            lambda: getattr(getattr(app.state, "page_cache", None), "lookups", None),
            ("not-modified", "hit", "miss"),
        )
    )
    return metrics


def include_flat(app: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes to the app's own list, as they are.

    ``app.include_router`` wraps a router in a node that the app probes route by route on every
    request, and probes again to dispatch (FastAPI 0.165: ``_IncludedRouter``): with the eight
    routers here, a request passed 29 route matchings, about a quarter of the CPU of a route
    that does nothing (docs/performance.md). These routers give each route its full path, tags
    and answers when it is declared and have no dependencies, hooks or limits of their own, so
    their routes can be the app's: the same routes, the same OpenAPI, one matching each."""
    if router.dependencies or router.on_startup or router.on_shutdown:
        raise ValueError("include_flat takes a router without dependencies or event hooks")
    app.router.routes.extend(router.routes)


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the registry app. ``engine`` lets tests share one; otherwise the lifespan makes one."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.check_runnable()
        app.state.log_signer = _log_signer(settings)
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        url = settings.resolved_database_url()
        own_engine = engine is None
        app.state.engine = (
            engine
            if engine is not None
            else make_engine(
                url,
                prepared_statements=settings.database_prepared_statements,
                generic_plans=settings.database_generic_plans,
            )
        )
        app.state.migrations_head = head_revision(url)
        # last: what startup built is frozen out of the collector's walks (gc_tuning.py)
        untune = gc_tuning.tune() if settings.gc_tuning else None
        try:
            yield
        finally:
            if untune is not None:
                untune()
            if own_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="carbonlabel registry",
        version="0.1.0",
        description="Signed, verifiable carbon labels for ML models.",
        lifespan=lifespan,
        # /docs is a page of the registry's own (pages/api_docs.py: no CDN); no /redoc
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.rate_limiter = make_rate_limiter(
        settings.resolved_rate_limit_backend(), lambda: app.state.engine
    )
    app.state.metrics = _metrics(app, settings)
    install_handlers(app)
    # Badges first: they are the most requested routes, and routes are tried in order.
    for router in (
        badges.router,
        routes.router,
        rankings.router,
        series.router,
        auditors.router,
        log.router,
        health.router,
        pages.router,
    ):
        include_flat(app, router)
    # Before /static, which would otherwise take its requests (mounts match by prefix, in order).
    app.mount(
        pages.api_docs.ASSETS_URL,
        StaticFiles(directory=pages.api_docs.assets_dir()),
        name="swagger-ui",
    )
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    # Innermost: the pages' and the API reads' validators and stored answers (http_cache.py).
    http_cache.install(
        app,
        pages.router.routes,
        [*routes.router.routes, *rankings.router.routes, *series.router.routes],
    )
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    # Outside the body limit: a refused request is answered before its body is read.
    app.add_middleware(
        RateLimitMiddleware,
        limiter=app.state.rate_limiter,
        address=Limit(
            "address",
            settings.rate_limit_per_address_per_minute,
            settings.rate_limit_per_address_burst,
        ),
        token=Limit("token", settings.rate_limit_per_minute, settings.rate_limit_burst),
    )
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
        document_common_problems(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
