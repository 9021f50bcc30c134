"""The badge routes' in-process cache and HTTP answers: rendered bodies with their headers
(``Cache-Control``, a strong ``ETag``, the SVG ``Content-Security-Policy``), encoded once, and
the 200 or 304 (``If-None-Match``) answered from them.

A badge served from the per-app cache (:class:`BadgeCache`) costs no database query and no trip
to the thread pool; concurrent misses of the same badge wait for one render instead of each
running their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

SVG_MEDIA_TYPE = "image/svg+xml;charset=utf-8"
JSON_MEDIA_TYPE = "application/json"
MUTABLE_CACHE_CONTROL = "max-age=300, s-maxage=300"
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
MAX_AGE_S = 300
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CACHE_TTL_S = 10.0
"""How long a rendered badge is served from memory before the database is asked again: a new
label shows on its model's badge at most this long after it was accepted (downstream HTTP caches
add at most ``max-age`` minus the ``Age`` this cache reports: 300 s in all)."""
CACHE_MAX_ENTRIES = 4096


@dataclass(frozen=True)
class Rendered:
    """One rendered response body with its headers, encoded once for every answer from it."""

    body: bytes
    etag: str
    immutable: bool
    raw_headers: list[tuple[bytes, bytes]]
    """For a 200 (Content-Length included)."""
    raw_headers_304: list[tuple[bytes, bytes]]
    """For a 304: the same, less Content-Type and Content-Length."""
    stored_at: float = 0.0


class BadgeCache:
    """A small in-process TTL cache of rendered badges, bounded (least recently used out), with
    one renderer per key at a time. One per app (``app.state.badge_cache``)."""

    def __init__(
        self,
        ttl_s: float = CACHE_TTL_S,
        max_entries: int = CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Event] = {}
        self.lookups = {"hit": 0, "miss": 0}
        """Calls of :meth:`get` by result (``carbonlabel_badge_cache_lookups_total``): a route
        looks up once per request, a miss then renders (or waits for a render) once."""

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, now: float | None = None) -> Rendered | None:
        entry = self._look(key, now)
        self.lookups["miss" if entry is None else "hit"] += 1
        return entry

    def _look(self, key: Hashable, now: float | None = None) -> Rendered | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if (self.clock() if now is None else now) - entry.stored_at >= self.ttl_s:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, value: Rendered) -> Rendered:
        stored = replace(value, stored_at=self.clock())
        if self.ttl_s <= 0:
            return stored
        self._entries[key] = stored
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return stored

    def clear(self) -> None:
        self._entries.clear()

    async def get_or_render(self, key: Hashable, render: Callable[[], Rendered]) -> Rendered:
        """The cached entry, or ``render()`` run once in the thread pool for all who ask."""
        while True:
            hit = self._look(key)  # not counted: the route's own look-up was
            if hit is not None:
                return hit
            pending = self._pending.get(key)
            if pending is None:
                break
            await pending.wait()  # then look again; if that render failed, render ourselves
        done = asyncio.Event()
        self._pending[key] = done
        try:
            return self.put(key, await run_in_threadpool(render))
        finally:
            del self._pending[key]
            done.set()

    def age_s(self, entry: Rendered, now: float | None = None) -> int:
        return max(0, int((self.clock() if now is None else now) - entry.stored_at))


def cache_of(request: Request) -> BadgeCache:
    state = request.app.state
    cache: BadgeCache | None = getattr(state, "badge_cache", None)
    if cache is None:
        ttl = float(state.settings.badge_cache_ttl_s)
        cache = BadgeCache(ttl_s=min(ttl, MAX_AGE_S))
        state.badge_cache = cache
    return cache


def rendered(body: str | bytes, *, media_type: str, immutable: bool) -> Rendered:
    data = body.encode("utf-8") if isinstance(body, str) else body
    etag = '"' + hashlib.sha256(data).hexdigest() + '"'
    headers = [
        ("cache-control", IMMUTABLE_CACHE_CONTROL if immutable else MUTABLE_CACHE_CONTROL),
        ("etag", etag),
        ("x-content-type-options", "nosniff"),
    ]
    if media_type == SVG_MEDIA_TYPE:
        headers.append(("content-security-policy", SVG_CSP))
    else:
        headers.append(("access-control-allow-origin", "*"))
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return Rendered(
        body=data,
        etag=etag,
        immutable=immutable,
        raw_headers=[
            (b"content-type", media_type.encode("latin-1")),
            (b"content-length", str(len(data)).encode("latin-1")),
            *raw,
        ],
        raw_headers_304=raw,
    )


class PreparedResponse(Response):
    """A response from an encoded body and header list: the cached path encodes nothing."""

    def __init__(
        self, body: bytes, raw_headers: list[tuple[bytes, bytes]], status_code: int = 200
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison): ``*`` or a list naming ``etag``."""
    if if_none_match.strip() == "*":
        return True
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def _if_none_match(request: Request) -> str | None:
    """The If-None-Match header (its values joined), read from the raw scope."""
    values = [v for k, v in request.scope["headers"] if k == b"if-none-match"]
    return b",".join(values).decode("latin-1") if values else None


def respond(
    request: Request, cache: BadgeCache, entry: Rendered, now: float | None = None
) -> Response:
    condition = _if_none_match(request)
    if condition is not None and _matches(condition, entry.etag):
        body, headers, status = b"", list(entry.raw_headers_304), 304
    else:
        body, headers, status = entry.body, list(entry.raw_headers), 200
    if not entry.immutable:
        age = cache.age_s(entry, now)
        if age:  # downstream caches then keep it at most max-age minus this long
            headers.append((b"age", str(age).encode("latin-1")))
    return PreparedResponse(body, headers, status)
