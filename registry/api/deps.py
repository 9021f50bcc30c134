"""Dependencies shared by the routes: settings, a database session per request, callers."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from registry.config import Settings
from registry.errors import ProblemError
from registry.models import Vendor
from registry.services import vendors as vendor_service

# Dependencies that do no I/O are ``async`` so that FastAPI runs them on the event loop instead
# of sending each to the thread pool.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@functools.lru_cache(maxsize=8)
def _autocommit(engine: Engine) -> Engine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _in_autocommit(request: Request, engine: Engine) -> bool:
    """Whether the request's session reads in autocommit. GET and HEAD on PostgreSQL do: at
    PostgreSQL's READ COMMITTED every statement takes its own snapshot inside a transaction too,
    so a read-only request sees exactly the same, and saves the BEGIN and the COMMIT (two round
    trips). SQLite keeps its transaction: there, it gives all the statements one snapshot."""
    return request.method in ("GET", "HEAD") and engine.dialect.name == "postgresql"


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request. Making it does no I/O; it connects on first use, in the route."""
    engine: Engine = request.app.state.engine
    autocommit = _in_autocommit(request, engine)
    with Session(_autocommit(engine) if autocommit else engine, expire_on_commit=False) as session:
        yield session
        # A route that raised leaves through the ``with`` (rollback). One that returned may leave
        # a read transaction open: end it with COMMIT, because psycopg drops every prepared
        # statement of a connection on ROLLBACK, and re-parsing each statement on every request
        # costs the database more CPU than the statements themselves. In autocommit there is no
        # transaction to end (both send nothing), and the session's own commit is skipped: its
        # bookkeeping cost a twentieth of a ranking request's CPU.
        if not autocommit and session.in_transaction():
            session.commit()


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


# Declares the scheme in the OpenAPI document (each operation that takes a token lists it); a
# missing or malformed header is answered below, as a problem.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    description="a vendor's API token, or the operator's admin token where an operation says so",
    auto_error=False,
)


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise ProblemError(
            "unauthorized",
            "send an API token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token


TokenDep = Annotated[str, Depends(bearer_token)]


def authenticated_vendor(session: Session, token: str) -> Vendor:
    """The token's vendor, or a 401 problem."""
    vendor = vendor_service.authenticate(session, token)
    if vendor is None:
        raise vendor_service.invalid_token()
    return vendor


def current_vendor(session: SessionDep, token: TokenDep) -> Vendor:
    return authenticated_vendor(session, token)


CurrentVendor = Annotated[Vendor, Depends(current_vendor)]


def is_admin(settings: Settings, token: str) -> bool:
    """Constant time: the SHA-256 digests are compared, so not even the length can leak."""
    if settings.admin_token is None:
        return False
    expected = hashlib.sha256(settings.admin_token.get_secret_value().encode()).digest()
    return hmac.compare_digest(expected, hashlib.sha256(token.encode()).digest())


async def require_admin(settings: SettingsDep, token: TokenDep) -> None:
    if not is_admin(settings, token):
        raise ProblemError(
            "unauthorized",
            "this call needs the operator's admin token",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]
