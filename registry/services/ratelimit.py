"""Rate limits per client address and per API token: GCRA, in memory or shared in the database.

GCRA (the generic cell rate algorithm) keeps one number per bucket, its *theoretical arrival time*
(TAT, epoch seconds). A limit of ``per_minute`` requests with bursts of ``burst`` has an emission
interval ``T = 60 / per_minute`` s and a tolerance ``tau = burst * T``. A request at ``now`` is
allowed when ``max(TAT, now) + T - now <= tau``, and then sets ``TAT = max(TAT, now) + T``; a
refused request changes nothing. A client that waits gets at most ``burst`` requests at once and
``per_minute`` per minute after that. A bucket whose TAT has passed is the same as no bucket, so
stale buckets can be dropped at any time.

Two backends, chosen by ``CARBONLABEL_RATE_LIMIT_BACKEND``:

- ``memory``: a dictionary in each process (the SQLite default: one process, no shared state).
- ``database``: the ``rate_limits`` table (UNLOGGED on PostgreSQL), shared by every server process.
  One ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING`` statement checks and charges
  all the buckets of a request in one round trip; the row lock serialises concurrent requests on a
  bucket, so the limit holds across processes. The clock is each process's ``time.time()``: the
  processes must share a clock (one host, or hosts kept in sync by NTP).

Each bucket is charged on its own: a request refused by its token's limit still counts against its
address's limit when that one allows it (and the other way round).

``RateLimitMiddleware`` applies the limits to ``/v1`` before any route work (and before the body
is read): per client address on every ``/v1`` request, per API token on ``/v1`` writes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Protocol

import anyio.to_thread
from sqlalchemy import Engine, TextClause, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Receive, Scope, Send

from registry.errors import PROBLEM_MEDIA_TYPE, problem_body

logger = logging.getLogger(__name__)

LimitScope = Literal["address", "token"]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LIMITED_PREFIX = "/v1"
STALE_ROWS_PER_CLEANUP = 1000
WARNING_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Limit:
    """``per_minute`` requests per bucket, with bursts of up to ``burst``; 0 disables it."""

    scope: LimitScope
    per_minute: int
    burst: int

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    @property
    def interval_s(self) -> float:
        """GCRA's emission interval T: the time one request costs."""
        return 60.0 / self.per_minute

    @property
    def tolerance_s(self) -> float:
        """GCRA's tolerance tau: how far ahead of ``now`` a bucket's TAT may run."""
        return self.interval_s * max(self.burst, 1)


@dataclass(frozen=True)
class Hit:
    """A bucket a request is charged to: ``key`` names it (never a secret), ``limit`` bounds it."""

    key: str
    limit: Limit


@dataclass(frozen=True)
class Refusal:
    """The limit that refused a request, and the whole seconds to wait before trying again."""

    limit: Limit
    retry_after_s: int


def retry_after_s(tat_s: float, now_s: float, limit: Limit) -> int:
    """Seconds (at least 1) until a bucket at ``tat_s`` allows one more request."""
    wait_s = tat_s + limit.interval_s - limit.tolerance_s - now_s
    return max(1, math.ceil(wait_s))


def _unique(hits: Sequence[Hit]) -> list[Hit]:
    """The enabled hits, one per key, sorted by key (a fixed lock order: no deadlocks)."""
    by_key = {hit.key: hit for hit in hits if hit.limit.enabled}
    return [by_key[key] for key in sorted(by_key)]


def _refusal(refused: Sequence[tuple[Hit, float]], now_s: float) -> Refusal | None:
    """The refusal that waits longest, among (hit, stored TAT) pairs."""
    if not refused:
        return None
    waits = [Refusal(hit.limit, retry_after_s(tat_s, now_s, hit.limit)) for hit, tat_s in refused]
    return max(waits, key=lambda refusal: refusal.retry_after_s)


class RateLimiter(Protocol):
    blocking: bool
    """True when ``check`` does I/O (run it in the thread pool, not on the event loop)."""

    def check(self, hits: Sequence[Hit]) -> Refusal | None:
        """Charge every bucket of ``hits`` that allows it; the longest refusal, or None."""
        ...


class MemoryRateLimiter:
    """GCRA buckets in this process's memory (each server process has its own)."""

    blocking = False

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_buckets: int = 100_000
    ) -> None:
        self.clock = clock
        self.max_buckets = max_buckets
        self._tat_s: dict[str, float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tat_s)

    def check(self, hits: Sequence[Hit]) -> Refusal | None:
        hits = _unique(hits)
        if not hits:
            return None
        now_s = self.clock()
        refused: list[tuple[Hit, float]] = []
        with self._lock:
            if len(self._tat_s) >= self.max_buckets:
                self._drop_stale(now_s)
            for hit in hits:
                tat_s = self._tat_s.get(hit.key, now_s)
                new_tat_s = max(tat_s, now_s) + hit.limit.interval_s
                if new_tat_s - now_s <= hit.limit.tolerance_s:
                    self._tat_s[hit.key] = new_tat_s
                else:
                    refused.append((hit, tat_s))
        return _refusal(refused, now_s)

    def _drop_stale(self, now_s: float) -> None:
        self._tat_s = {key: tat for key, tat in self._tat_s.items() if tat > now_s}
        if len(self._tat_s) >= self.max_buckets:  # all live: forget them rather than grow
            self._tat_s.clear()


@cache
def _charge_statement(dialect: str, count: int) -> TextClause:
    """Insert or advance ``count`` buckets; RETURNING names those that allowed the request.

    Parameters: ``now``, and per bucket ``b<i>`` (key), ``t<i>`` (T) and ``l<i>`` (tau).
    """
    greatest = "GREATEST" if dialect == "postgresql" else "MAX"
    values = ", ".join(f"(:b{i}, :now + :t{i})" for i in range(count))
    interval = " ".join(f"WHEN :b{i} THEN :t{i}" for i in range(count))
    tolerance = " ".join(f"WHEN :b{i} THEN :l{i}" for i in range(count))
    advanced = f"{greatest}(rate_limits.tat_s, :now) + (CASE rate_limits.bucket {interval} END)"
    return text(
        f"INSERT INTO rate_limits (bucket, tat_s) VALUES {values} "  # noqa: S608 (no user text)
        f"ON CONFLICT (bucket) DO UPDATE SET tat_s = {advanced} "
        f"WHERE {advanced} - :now <= (CASE rate_limits.bucket {tolerance} END) "
        "RETURNING bucket"
    )


@cache
def _read_statement(count: int) -> TextClause:
    keys = ", ".join(f":b{i}" for i in range(count))
    return text(f"SELECT bucket, tat_s FROM rate_limits WHERE bucket IN ({keys})")  # noqa: S608


@cache
def _cleanup_statement(dialect: str) -> TextClause:
    """Delete a batch of stale buckets (their TAT has passed: the same as no row)."""
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    return text(
        "DELETE FROM rate_limits WHERE bucket IN (SELECT bucket FROM rate_limits "  # noqa: S608
        f"WHERE tat_s < :now LIMIT {STALE_ROWS_PER_CLEANUP}{lock})"
    )


class DatabaseRateLimiter:
    """GCRA buckets in the ``rate_limits`` table, shared by every process on the database.

    When the database cannot be reached the check fails open: the request goes on (a write then
    fails on its own) and a warning is logged at most once a minute per process.
    """

    blocking = True

    def __init__(
        self,
        engine: Callable[[], Engine],
        *,
        clock: Callable[[], float] = time.time,
        cleanup_probability: float = 0.01,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.cleanup_probability = cleanup_probability
        self.rng = rng
        self._last_warning_s = -math.inf

    def check(self, hits: Sequence[Hit]) -> Refusal | None:
        hits = _unique(hits)
        if not hits:
            return None
        try:
            return self._check(hits)
        except SQLAlchemyError as exc:
            self._warn(exc)
            return None

    def _check(self, hits: list[Hit]) -> Refusal | None:
        engine = self.engine()
        now_s = self.clock()
        params: dict[str, Any] = {"now": now_s}
        for i, hit in enumerate(hits):
            params |= {f"b{i}": hit.key, f"t{i}": hit.limit.interval_s}
            params[f"l{i}"] = hit.limit.tolerance_s
        dialect = engine.dialect.name
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            charged = set(conn.execute(_charge_statement(dialect, len(hits)), params).scalars())
            refused_hits = [hit for hit in hits if hit.key not in charged]
            refused: list[tuple[Hit, float]] = []
            if refused_hits:
                keys = {f"b{i}": hit.key for i, hit in enumerate(refused_hits)}
                rows = conn.execute(_read_statement(len(refused_hits)), keys).all()
                stored = {row.bucket: float(row.tat_s) for row in rows}
                refused = [(hit, stored.get(hit.key, now_s)) for hit in refused_hits]
            if self.rng() < self.cleanup_probability:
                conn.execute(_cleanup_statement(dialect), {"now": now_s})
        return _refusal(refused, now_s)

    def _warn(self, exc: SQLAlchemyError) -> None:
        # The class name only: SQLAlchemy's message carries the statement's parameters.
        now_s = time.monotonic()
        if now_s - self._last_warning_s >= WARNING_INTERVAL_S:
            self._last_warning_s = now_s
            logger.warning(
                "rate limits unavailable (%s): requests are let through unlimited",
                type(exc).__name__,
            )


def make_rate_limiter(
    backend: Literal["memory", "database"], engine: Callable[[], Engine]
) -> RateLimiter:
    if backend == "database":
        return DatabaseRateLimiter(engine)
    return MemoryRateLimiter()


# -- the middleware ------------------------------------------------------------------------------


def address_key(host: str | None) -> str:
    """The bucket of a client address: IPv4 as is, IPv6 by its /64 (one host's usual share)."""
    if not host:
        return "a:unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "a:" + host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"a:{ip.ipv4_mapped}"
        return f"a:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"a:{ip}"


def token_key(authorization: bytes) -> str | None:
    """The bucket of a bearer token: ``t:`` + its SHA-256 (the token itself is never kept)."""
    scheme, _, token = authorization.partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return None
    return "t:" + hashlib.sha256(token).hexdigest()


def _limited(path: str) -> bool:
    return path == LIMITED_PREFIX or path.startswith(LIMITED_PREFIX + "/")


def _describe(limit: Limit) -> str:
    who = "from this client address" if limit.scope == "address" else "with this API token"
    what = "requests" if limit.scope == "address" else "write requests"
    return (
        f"too many {what} {who}: at most {limit.per_minute} per minute "
        f"(bursts of {max(limit.burst, 1)})"
    )


class RateLimitMiddleware:
    """429 ``rate-limited`` with ``Retry-After`` for ``/v1`` requests over a limit.

    Every ``/v1`` request counts against its client address (``scope["client"]``: put uvicorn's
    ``--forwarded-allow-ips`` to the proxy's address so that it is the real client's); ``/v1``
    writes with a bearer token also count against the token, before it is checked. Badges,
    cards, pages, static files and the health routes are not limited (HTTP caches serve them).
    """

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, address: Limit, token: Limit) -> None:
        self.app = app
        self.limiter = limiter
        self.address = address
        self.token = token

    def hits(self, scope: Scope) -> list[Hit]:
        hits = []
        if self.address.enabled:
            client = scope.get("client")
            hits.append(Hit(address_key(client[0] if client else None), self.address))
        if self.token.enabled and scope["method"] in WRITE_METHODS:
            for name, value in scope["headers"]:
                if name == b"authorization":
                    key = token_key(value)
                    if key is not None:
                        hits.append(Hit(key, self.token))
                    break
        return hits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _limited(scope["path"]):
            await self.app(scope, receive, send)
            return
        hits = self.hits(scope)
        refusal = None
        if hits:
            if self.limiter.blocking:
                refusal = await anyio.to_thread.run_sync(self.limiter.check, hits)
            else:
                refusal = self.limiter.check(hits)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        # a refused POST /v1/labels counts as a rate-limited submission (registry/metrics.py)
        await self._refuse(scope, send, refusal)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
        body = problem_body("rate-limited", 429, _describe(refusal.limit), scope["path"])
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(payload)).encode()),
            (b"retry-after", str(refusal.retry_after_s).encode()),
        ]
        if scope["method"] in WRITE_METHODS:
            # The request body is left unread: the connection cannot carry another request.
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
