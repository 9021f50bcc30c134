"""One error base class; one handler turns it (and the framework's errors) into RFC 9457
problems."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_BASE = "urn:carbonlabel:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# Every problem type the API can answer with, and its HTTP status (docs/api.md lists them too).
PROBLEM_TYPES: dict[str, int] = {
    "unauthorized": 401,
    "forbidden": 403,
    "malformed-envelope": 400,
    "unknown-key": 403,
    "revoked-key": 403,
    "vendor-mismatch": 403,
    "bad-signature": 422,
    "schema-violation": 422,
    "inconsistent-results": 422,
    "wrong-audience": 422,
    "label-conflict": 409,
    "payload-too-large": 413,
    "rate-limited": 429,
    "not-found": 404,
    "method-not-allowed": 405,
    "validation-error": 422,
    "bad-request": 400,
    "vendor-exists": 409,
    "key-exists": 409,
    "bad-proof": 422,
    "invalid-key": 422,
    "auditor-exists": 409,
    "auditor-mismatch": 403,
    "subject-mismatch": 422,
    "attestation-conflict": 409,
    "invalid-cursor": 400,
    "not-ready": 503,
    "unavailable": 503,
    "internal-error": 500,
}


class ProblemError(Exception):
    """A domain error with a stable problem type; raised by services, rendered by one handler."""

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        if kind not in PROBLEM_TYPES:
            raise ValueError(f"unknown problem kind {kind!r}")
        super().__init__(detail)
        self.kind = kind
        self.status = PROBLEM_TYPES[kind]
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def problem_body(
    kind: str, status: int, detail: str, instance: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind,
        "title": kind.replace("-", " ").capitalize(),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    return body


def problem_response(
    kind: str,
    detail: str,
    *,
    status: int | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    code = status or PROBLEM_TYPES[kind]
    body = problem_body(kind, code, detail, instance) | extensions
    return JSONResponse(body, status_code=code, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


logger = logging.getLogger("registry")

# Seconds a client should wait before retrying a request that found the database unavailable.
UNAVAILABLE_RETRY_AFTER_S = 1


def database_unavailable(exc: Exception) -> bool:
    """A transient database failure: unreachable or restarting server, dropped connection,
    exhausted pool (and PostgreSQL's serialization failures, deadlocks and cancelled statements,
    which are OperationalErrors too). Retrying later can succeed; nothing was half-stored,
    since each request commits once."""
    if isinstance(exc, PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    )


_STATUS_KINDS = {
    404: "not-found",
    405: "method-not-allowed",
    401: "unauthorized",
    413: "payload-too-large",
}


def allowed_methods(request: Request) -> str:
    """The methods of every route at the request's path (RFC 9110 ``Allow``): the framework's 405
    names only those of the first route that matched the path, and a path can have several."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in request.app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.kind,
            exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extensions,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _STATUS_KINDS.get(exc.status_code, "bad-request")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem_response(
            kind,
            detail,
            status=exc.status_code,
            instance=request.url.path,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "pointer": "/" + "/".join(str(p) for p in err.get("loc", ())),
                "message": str(err.get("msg", "")),
            }
            for err in exc.errors()
        ]
        return problem_response(
            "validation-error",
            "the request does not match the API's schema",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeoutError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # a bug, not an outage: the 500 handler below answers (and logs it)
        # one line, no traceback: an outage is an operational event, reported by /readyz too
        logger.warning(
            "database unavailable during %s %s: %s",
            request.method,
            request.url.path,
            type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__,
        )
        return problem_response(
            "unavailable",
            "the database is unavailable; retry later",
            instance=request.url.path,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            "internal-error", "an unexpected error occurred", instance=request.url.path
        )
