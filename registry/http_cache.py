"""HTTP caching of the HTML pages, the vendor ranking (``GET /v1/vendors``) and the API's reads of
labels, models and vendors (:data:`CACHED_API_PATHS`): strong ETags, ``Cache-Control``, 304
answers to ``If-None-Match``, and an in-process cache of rendered bodies.

**The data version.** Every change that can alter a page or a ranking appends to the
transparency log in its own transaction: a label (ingest), a key's registration, retirement or
compromise (standings and currency), an auditor's registration and attestations (tiers). So the
log's head (``log_head``: tree size and root hash, one row read by primary key) is a version of
everything these answers show, and every server process, on any host, sees a change as soon as
it is committed. Vendor creation is the one write that is not logged: it changes no answer that
had a validator (the vendor's page was a 404, which carries none and is never stored; no other
page or ranking shows a vendor without labels). A new mutation that can change a page must
append to the log in the same transaction, or the pages' validators go stale.

**The ETag** is the SHA-256 of (the build identity, the data version, the path, the query
parameters in a canonical order, the negotiated representation). The build identity hashes the
code, templates and methodology files, the migrations' head and the public URL, so a new release
or another configuration never answers 304 to a validator of the old one. An ``If-None-Match``
that names the ETag is answered 304 before any page code runs: one primary-key read.

**Bodies.** A 200 is stored (bounded in bytes, least recently used out) under its ETag when the
version read after rendering is the one read before: no change was committed meanwhile, so the
body is exactly that version's (otherwise it is sent without an ETag and not stored). "Before"
is the last version this process read (by any request) when nothing can be answered without
rendering (no ``If-None-Match``, nothing stored under that version's ETag): it was read before
the render began, and versions never repeat, so finding it again afterwards proves the same,
and a miss costs one read of the head instead of two. That read is made by the route itself
at its end, in its thread and on its own session (:mod:`registry.version_after`), where the
route is synchronous, took a session and made its whole body; else by the middleware after the
route. A request with a condition, or one that a
stored answer may serve, reads the version first. Entries of
another version are dropped when a request reads a new head, and never served. Concurrent misses
of the same answer wait for one render. Only GET and HEAD, only 200s; problems (4xx, 5xx) pass
through untouched. Pages carry no per-request state (no nonce, cookie or session): the same URL
at the same version is the same bytes for everyone.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry import version_after
from registry.api.badge_cache import _matches
from registry.api.rankings import wants_csv
from registry.db import read_row
from registry.services import translog

CACHE_CONTROL = "public, max-age=0, must-revalidate"
"""Any cache may store the answer but must revalidate it before each use: answers change with
every logged event, and revalidation costs the registry one primary-key read (docs/operations.md
says why not a longer max-age)."""
RANKING_PATH = "/v1/vendors"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILD_FOLDERS = ("registry", "schemas", "web/templates")
"""What a page is made from besides the data: code, methodology files and templates."""
_STRIPPED_FROM_304 = {b"content-type", b"content-length", b"content-disposition"}


@dataclass(frozen=True)
class DataVersion:
    tree_size: int
    root_hash: bytes


def read_data_version(engine: Engine) -> DataVersion:
    """The log's head: one primary-key read, in autocommit, on the driver's connection
    (``registry.db.read_row``: every request pays it)."""
    head = translog.head_of(read_row(engine, translog.HEAD_SQL))
    return DataVersion(head.tree_size, head.root_hash)


def read_data_version_on(connection: Connection) -> DataVersion:
    """The log's head on ``connection``: a request's own, after its body
    (:mod:`registry.version_after`)."""
    head = translog.head(connection)
    return DataVersion(head.tree_size, head.root_hash)


def _read_after(connection: Connection) -> DataVersion:
    return read_data_version_on(connection)  # looked up at each call (the tests replace it)


@functools.cache
def code_digest() -> str:
    """SHA-256 over the files pages are made from (paths and contents), once per process."""
    digest = hashlib.sha256()
    for folder in BUILD_FOLDERS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def build_identity(public_url: str, migrations_head: str | None) -> str:
    """What else, besides the data, an answer depends on: the build and the configuration."""
    parts = (code_digest(), migrations_head or "", public_url)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def canonical_query(query_string: bytes) -> list[tuple[str, str]]:
    """The query parameters as the app parses them, ordered by name; the values of one name keep
    their order (``vendors=b&vendors=a`` orders the compare page's columns)."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return sorted(pairs, key=lambda pair: pair[0])


def make_etag(
    identity: str, version: DataVersion, path: str, query_string: bytes, variant: str
) -> str:
    basis = json.dumps(
        [
            identity,
            version.tree_size,
            version.root_hash.hex(),
            path,
            canonical_query(query_string),
            variant,
        ],
        separators=(",", ":"),
    )
    return '"' + hashlib.sha256(basis.encode()).hexdigest() + '"'


# -- the routes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedRoute:
    """A route whose GET answers are cached; ``vary_accept``: its representation is negotiated
    (``Vary: Accept``), so the ETag names the representation chosen."""

    route: BaseRoute
    vary_accept: bool = False

    def variant(self, scope: Scope) -> str:
        if not self.vary_accept:
            return ""
        accept = b",".join(v for k, v in scope["headers"] if k == b"accept").decode("latin-1")
        return "csv" if wants_csv(accept) else "json"


CACHED_API_PATHS = {
    RANKING_PATH: True,  # JSON or CSV, by Accept or ?format
    "/v1/labels": False,
    "/v1/labels/{label_id}": False,
    "/v1/models/{vendor}/{model}": False,
    "/v1/vendors/{vendor}": False,
    "/v1/models/{vendor}/{model}/series": False,
    "/v1/vendors/{vendor}/series": False,
}
"""The API's reads that are cached, with whether their representation is negotiated. Each
answer is a function of the logged data alone: no caller, no clock (the envelope route answers
immutable bytes on its own; ``/v1/whoami`` depends on the token, so it is not here)."""


def cacheable_routes(
    page_routes: Iterable[BaseRoute], api_routes: Iterable[BaseRoute]
) -> list[CachedRoute]:
    """Every GET route of the pages' router, and the API's of :data:`CACHED_API_PATHS` (routers
    included in the app without a prefix: their paths are the app's)."""
    found = [CachedRoute(route) for route in page_routes if _is_get(route)]
    for route in api_routes:
        path = getattr(route, "path", None)
        if _is_get(route) and path in CACHED_API_PATHS:
            found.append(CachedRoute(route, vary_accept=CACHED_API_PATHS[path]))
    return found


def _is_get(route: BaseRoute) -> bool:
    return "GET" in (getattr(route, "methods", None) or ())


# -- the body cache --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A 200 answer with its ETag and Cache-Control, and the headers of its 304."""

    body: bytes
    etag: str
    raw_headers: list[tuple[bytes, bytes]]
    raw_headers_304: list[tuple[bytes, bytes]]


class PageCache:
    """Rendered answers of one data version, at most ``max_bytes`` of bodies (least recently
    used out; an answer over an eighth of it is not kept). One per app
    (``app.state.page_cache``)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.version: DataVersion | None = None
        self._entries: OrderedDict[str, Stored] = OrderedDict()
        self._bytes = 0
        self._pending: dict[str, asyncio.Event] = {}
        self.lookups = {"not-modified": 0, "hit": 0, "miss": 0}
        """Cached GETs by result (``carbonlabel_http_cache_lookups_total``), counted by the
        middleware."""

    def __len__(self) -> int:
        return len(self._entries)

    def observe(self, version: DataVersion) -> None:
        """A version read from the database: a different one drops every stored answer."""
        if version != self.version:
            self._entries.clear()
            self._bytes = 0
            self.version = version

    def get(self, etag: str) -> Stored | None:
        entry = self._entries.get(etag)
        if entry is not None:
            self._entries.move_to_end(etag)
        return entry

    def put(self, etag: str, version: DataVersion, entry: Stored) -> None:
        size = len(entry.body)
        if version != self.version or size > self.max_bytes // 8 or etag in self._entries:
            return
        self._entries[etag] = entry
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped.body)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self.version = None

    def in_flight(self, etag: str) -> asyncio.Event | None:
        """Set when the render of this answer now running ends (None: none runs)."""
        return self._pending.get(etag) if self.max_bytes > 0 else None

    @contextmanager
    def rendering(self, etag: str) -> Iterator[None]:
        """Mark a render of this answer as running. Several may run at once (when no body is
        kept, ``in_flight`` makes nobody wait): each removes only its own mark."""
        done = asyncio.Event()
        self._pending[etag] = done
        try:
            yield
        finally:
            if self._pending.get(etag) is done:
                del self._pending[etag]
            done.set()


# -- the middleware --------------------------------------------------------------------------------


@dataclass
class _Captured:
    status: int = 500
    headers: list[tuple[bytes, bytes]] | None = None
    body: bytearray | None = None


class HttpCacheMiddleware:
    """Validators, 304s and stored bodies for the routes given (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: list[CachedRoute],
        cache: PageCache,
        engine: Callable[[], Engine],
        identity: Callable[[], str],
    ) -> None:
        self.app = app
        self.routes = routes
        self.cache = cache
        self.engine = engine
        self.identity = identity
        self._latest: DataVersion | None = None
        """The version the last read in this process found: read before any request that
        starts now, so a render that starts on it and finds it again afterwards is its body."""
        self._identity: str | None = None
        # a cheap first look: the first segment of every cached path ("" for "/")
        self._first_segments = {
            str(getattr(cached.route, "path", "/"))[1:].partition("/")[0] for cached in routes
        }

    def _match(self, scope: Scope) -> CachedRoute | None:
        if scope["path"][1:].partition("/")[0] not in self._first_segments:
            return None  # the badges, the most requested routes, leave here
        probe = scope if scope["method"] == "GET" else {**scope, "method": "GET"}
        for cached in self.routes:
            match, _ = cached.route.matches(probe)
            if match == Match.FULL:
                return cached
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        cached = self._match(scope)
        if cached is None:
            await self.app(scope, receive, send)
            return
        variant = cached.variant(scope)

        def etag_at(identity: str, version: DataVersion) -> str:
            return make_etag(
                identity, version, scope["path"], scope.get("query_string", b""), variant
            )

        condition = _if_none_match(scope)
        version: DataVersion | None = None
        etag = ""
        latest, identity = self._latest, self._identity
        if condition is None and latest is not None and identity is not None:
            etag = etag_at(identity, latest)
            # with a stored answer (or one being rendered), only a current version may serve it
            if self.cache.get(etag) is None and self.cache.in_flight(etag) is None:
                version = latest
        # ``version`` None: read the version now (a 304 or a stored answer depends on it). Else
        # the render starts on the last version read, and the read after it confirms that no
        # change was committed in between (versions never repeat): one read per miss, not two.
        confirmed = version is None
        if confirmed:
            try:
                read, read_identity = await run_in_threadpool(self._look_up)
            except (SQLAlchemyError, RuntimeError):
                # no version (the database is down, or not migrated): answered as without a cache
                await self.app(scope, receive, send)
                return
            self.cache.observe(read)
            version = read
            etag = etag_at(read_identity, read)
        with_body = scope["method"] == "GET"
        # ``*`` matches only an existing answer (a 404 is none): it is checked after rendering.
        if condition is not None and condition.strip() != "*" and _matches(condition, etag):
            scope["route"] = cached.route  # for the metrics: no routing happens
            self.cache.lookups["not-modified"] += 1
            stored = self.cache.get(etag)
            headers = stored.raw_headers_304 if stored else _headers_304(etag, cached)
            await _send(send, 304, headers, b"")
            return
        while confirmed:
            stored = self.cache.get(etag)
            if stored is not None:
                scope["route"] = cached.route
                self.cache.lookups["hit"] += 1
                await self._answer(send, stored, with_body, condition)
                return
            pending = self.cache.in_flight(etag)
            if pending is None:
                break
            await pending.wait()  # then look again; if that answer was not stored, render
        self.cache.lookups["miss"] += 1
        with self.cache.rendering(etag), version_after.expecting() as asked:
            captured = await self._render(scope, receive)
            if captured.headers is None:
                return  # the app answered nothing (the client went away)
            body = bytes(captured.body or b"")
            if captured.status != 200 or not _storable(captured.headers):
                await _send(send, captured.status, captured.headers, body if with_body else b"")
                return
            headers = [*captured.headers, (b"cache-control", CACHE_CONTROL.encode())]
            after = await self._version_after(asked)
            if after is not None:
                self.cache.observe(after)  # a newer version drops the older's answers
            if after is None or after != version:
                # a change was committed while rendering: this body may be either version's
                await _send(send, 200, headers, body if with_body else b"")
                return
            headers.append((b"etag", etag.encode()))
            headers_304 = [h for h in headers if h[0] not in _STRIPPED_FROM_304]
            answer = Stored(body, etag, headers, headers_304)
            self.cache.put(etag, after, answer)
        await self._answer(send, answer, with_body, condition)

    async def _answer(
        self, send: Send, answer: Stored, with_body: bool, condition: str | None
    ) -> None:
        """A stored (or storable) 200, or its 304 when ``condition`` names it (or is ``*``)."""
        if condition is not None and _matches(condition, answer.etag):
            await _send(send, 304, answer.raw_headers_304, b"")
        else:
            await _send(send, 200, answer.raw_headers, answer.body if with_body else b"")

    async def _version_after(self, pending: version_after.Pending) -> DataVersion | None:
        """The version read after the body: by the route itself where it could
        (:mod:`registry.version_after`), else now; None when the read failed."""
        if pending.done:
            if pending.version is not None:
                self._latest = pending.version
            return pending.version
        try:
            return await run_in_threadpool(self._read_version)
        except (SQLAlchemyError, RuntimeError):
            return None

    def _look_up(self) -> tuple[DataVersion, str]:
        """The data version and the build identity (in the thread pool: both may read)."""
        version = self._read_version()
        self._identity = self.identity()
        return version, self._identity

    def _read_version(self) -> DataVersion:
        """The data version, now; kept as the last version read (``_latest``)."""
        self._latest = version = read_data_version(self.engine())
        return version

    async def _render(self, scope: Scope, receive: Receive) -> _Captured:
        """The app's answer to the request as a GET, kept whole."""
        captured = _Captured()
        inner = scope if scope["method"] == "GET" else {**scope, "method": "GET"}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = list(message.get("headers", []))
                captured.body = bytearray()
            elif message["type"] == "http.response.body" and captured.body is not None:
                captured.body += message.get("body", b"")

        await self.app(inner, receive, capture)
        if inner is not scope and "route" in inner:
            scope["route"] = inner["route"]
        return captured


def _if_none_match(scope: Scope) -> str | None:
    values = [v for k, v in scope["headers"] if k == b"if-none-match"]
    return b",".join(values).decode("latin-1") if values else None


def _storable(headers: list[tuple[bytes, bytes]]) -> bool:
    """Not an answer that chose its own caching, or set a cookie."""
    names = {name.lower() for name, _ in headers}
    return not names & {b"cache-control", b"etag", b"set-cookie"}


def _headers_304(etag: str, cached: CachedRoute) -> list[tuple[bytes, bytes]]:
    """A 304's headers when no stored answer has them (RFC 9110 15.4.5)."""
    headers = [(b"cache-control", CACHE_CONTROL.encode()), (b"etag", etag.encode())]
    if cached.vary_accept:
        headers.append((b"vary", b"Accept"))
    return headers


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install(
    app: Any, page_routes: Iterable[BaseRoute], api_routes: Iterable[BaseRoute]
) -> PageCache:
    """Add the middleware to ``app`` (innermost of those added so far) for the routes that
    :func:`cacheable_routes` picks; returns its cache (also ``app.state.page_cache``)."""
    settings = app.state.settings
    cached = cacheable_routes(page_routes, api_routes)
    version_after.install((c.route for c in cached), _read_after)
    cache = PageCache(settings.page_cache_max_bytes)
    app.state.page_cache = cache
    app.add_middleware(
        HttpCacheMiddleware,
        routes=cached,
        cache=cache,
        engine=lambda: app.state.engine,
        identity=lambda: build_identity(
            settings.public_url, getattr(app.state, "migrations_head", None)
        ),
    )
    return cache
