"""The HTTP cache's read of the data version after a body (``registry.http_cache``), done by the
route itself: at its end, in the thread pool's thread that ran it and on its request's own
database session. A miss of a cached answer then needs no second trip through the thread pool
and no second connection from the pool: that trip and read cost 0.25 to 0.3 ms of CPU per
request, an eighth of a ranking's (measured in-process with 8 requests at a time, 1M labels).

:func:`install` wraps the synchronous routes that the cache serves; the middleware asks for the
read with :func:`expecting` around the render. The read counts only when it follows the whole
body: the route returned a :class:`Response` whose body is made (not a streaming or file
answer, whose body is read later) and took a database session. Otherwise (an ``async`` route,
no session, a route run outside the cache) nothing is read here and the middleware reads the
version itself, as before.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute


@dataclass
class Pending:
    """What the route read after its body: the version, or that the read failed."""

    version: Any = None
    failed: bool = False

    @property
    def done(self) -> bool:
        return self.version is not None or self.failed


_PENDING: ContextVar[Pending | None] = ContextVar("carbonlabel_version_after", default=None)


@contextmanager
def expecting() -> Iterator[Pending]:
    """Ask the route run inside this block (the thread pool copies the context into its thread)
    to read the version after its body; the answer is in the :class:`Pending` given."""
    pending = Pending()
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


def _whole(answer: Any) -> bool:
    """A response whose body is made: nothing of it is read after the route returns (a
    streaming or file answer has no ``body``: it makes it while it is sent)."""
    return isinstance(answer, Response) and hasattr(answer, "body")


def reading_after(
    call: Callable[..., Any], read: Callable[[Connection], Any]
) -> Callable[..., Any]:
    """``call`` (a synchronous route), then, when asked (:func:`expecting`), ``read`` on the
    connection of the request's session, whose answer goes to the middleware."""

    @functools.wraps(call)
    def route(*args: Any, **arguments: Any) -> Any:
        answer = call(*args, **arguments)
        pending = _PENDING.get()
        if pending is None or not _whole(answer):
            return answer
        session = next((v for v in arguments.values() if isinstance(v, Session)), None)
        if session is not None:
            try:
                pending.version = read(session.connection())
            except (SQLAlchemyError, RuntimeError):
                pending.failed = True  # answered without a validator, as a failed read was
        return answer

    route.reads_version_after = True  # type: ignore[attr-defined]
    return route


def install(routes: Iterable[BaseRoute], read: Callable[[Connection], Any]) -> None:
    """Wrap each synchronous API route of ``routes`` (once: the routers' routes are shared by
    every app made in the process, and each app's cache asks through the context)."""
    for route in routes:
        if not isinstance(route, APIRoute) or route.dependant.call is None:
            continue
        call = route.dependant.call
        if getattr(call, "reads_version_after", False) or not _is_sync(call):
            continue
        route.dependant.call = reading_after(call, read)


def _is_sync(call: Callable[..., Any]) -> bool:
    return inspect.isfunction(call) and not inspect.iscoroutinefunction(call)
