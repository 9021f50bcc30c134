"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from registry.db import current_revision
from registry.errors import PROBLEM_MEDIA_TYPE, ProblemError

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "RFC 9457 problem: database unreachable or not migrated",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    },
)
def readyz(request: Request) -> dict[str, Any]:
    """The database answers and its schema is at the migrations' head."""
    head = request.app.state.migrations_head
    try:
        current = current_revision(request.app.state.engine)
    except SQLAlchemyError as exc:
        raise ProblemError("not-ready", f"database unreachable: {type(exc).__name__}") from None
    if current != head:
        raise ProblemError(
            "not-ready",
            f"database schema is at {current!r}, migrations head is {head!r}: "
            "run `carbonlabel db upgrade`",
        )
    return {"status": "ready", "database": "ok", "migration": current}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: this process's counters, and registry-wide gauges read from the
    database at most once per ``CARBONLABEL_METRICS_CACHE_TTL_S`` (left out, not a 503, when it
    fails: docs/operations.md#metrics)."""
    body = generate_latest(request.app.state.metrics.registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
