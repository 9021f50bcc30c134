"""Prometheus metrics (docs/operations.md#metrics lists them all).

Each app gets its own CollectorRegistry, so several apps in one process (tests) do not collide.

Two kinds of figures:

- **this process's**: requests by route template and status, their latencies, label submissions
  by outcome, and the badge and page caches' look-ups (counters);
- **the registry's**, read from the database at scrape time by :class:`DatabaseCollector` (labels
  by kind and tier, the log's size and age): every replica reports the same figures, so a
  dashboard takes ``max()`` across replicas, not ``sum()``. They are read at most once per
  ``ttl_s`` (``CARBONLABEL_METRICS_CACHE_TTL_S``); when the read fails, ``/metrics`` still
  answers: ``carbonlabel_metrics_database_up`` is 0 and those gauges are left out.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.errors import PROBLEM_BASE, PROBLEM_TYPES

if TYPE_CHECKING:
    from registry.services.stats import RegistryStats

logger = logging.getLogger(__name__)

SUBMISSIONS = ("POST", "/v1/labels")
"""The requests counted in ``carbonlabel_label_submissions_total``."""
MAX_PROBLEM_BYTES = 4096
"""How much of a refused submission's answer is kept to read its problem type."""
DEFAULT_DATABASE_TTL_S = 30.0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "carbonlabel_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "carbonlabel_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.ingest = Counter(
            "carbonlabel_label_submissions",
            "Label submissions (POST /v1/labels) by the answer given: created, duplicate, or the "
            "problem type of a refusal (schema-violation, unauthorized, rate-limited, ...).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("created", "duplicate"):
            self.ingest.labels(outcome)

    def add(self, collector: Any) -> None:
        """Register a collector read at scrape time (see the classes below)."""
        self.registry.register(collector)


def submission_outcome(status: int, body: bytes) -> str:
    """The outcome of a submission answered ``status`` with ``body``: ``created`` (201),
    ``duplicate`` (200), or the problem type named by an RFC 9457 body."""
    if status == 201:
        return "created"
    if status == 200:
        return "duplicate"
    try:
        kind = str(json.loads(body).get("type", "")).removeprefix(PROBLEM_BASE)
    except (ValueError, AttributeError):
        kind = ""
    # only the known types: the label's values stay a small, fixed set
    return kind if kind in PROBLEM_TYPES else f"http-{status}"


class MetricsMiddleware:
    """Counts every HTTP request by its route template (not its raw path, to bound cardinality),
    and every label submission by its outcome. Outermost, so that it sees the answers of the
    other middleware too (rate limits, body limit)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        answered = False
        submission = (scope["method"], scope["path"]) == SUBMISSIONS
        problem = bytearray()

        async def capture(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                answered = True
            elif submission and status >= 300 and len(problem) < MAX_PROBLEM_BYTES:
                problem.extend(message.get("body", b""))
            await send(message)

        raised = False
        try:
            await self.app(scope, receive, capture)
        except Exception:  # not a cancellation (the client gone): that stays "disconnected"
            raised = True
            raise
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(method, route).observe(time.perf_counter() - started)
            if submission:
                if answered:
                    outcome = submission_outcome(status, bytes(problem))
                else:
                    outcome = "internal-error" if raised else "client-disconnected"
                self.metrics.ingest.labels(outcome).inc()


class LookupCollector:
    """A counter of a cache's look-ups by result, read at scrape time from counts the cache
    keeps itself (plain integers: its hot path pays no lock). ``read`` gives the counts, or None
    while the cache does not exist yet (all zeros then)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        read: Callable[[], Mapping[str, int] | None],
        results: Sequence[str],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.read = read
        self.results = results

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=["result"])

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        counts = self.read() or {}
        family = self._family()
        for result in dict.fromkeys([*self.results, *counts]):
            family.add_metric([result], counts.get(result, 0))
        return [family]


class DatabaseCollector:
    """The registry-wide gauges, read from the database at most once per ``ttl_s`` (0: at every
    scrape); concurrent scrapes share one read. A failed read is kept for ``ttl_s`` too, so an
    unreachable database costs one slow attempt per TTL, not one per scrape."""

    def __init__(
        self,
        read: Callable[[], RegistryStats],
        ttl_s: float = DEFAULT_DATABASE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.read = read
        self.ttl_s = ttl_s
        self.clock = clock
        self.wall_clock = wall_clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._stats: RegistryStats | None = None

    def stats(self) -> RegistryStats | None:
        """The figures, fresh or at most ``ttl_s`` old; None when the last read failed."""
        with self._lock:
            now = self.clock()
            if self._read_at is not None and now - self._read_at < self.ttl_s:
                return self._stats
            try:
                self._stats = self.read()
            except Exception as exc:  # whatever fails, the scrape must still answer
                logger.warning("metrics: reading the database failed: %s", type(exc).__name__)
                self._stats = None
            self._read_at = now
            return self._stats

    def _families(
        self, stats: RegistryStats | None
    ) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "carbonlabel_metrics_database_up",
            "1 when the last read of the registry-wide gauges from the database succeeded, 0 "
            "when it failed (carbonlabel_labels and carbonlabel_log_* are then left out).",
        )
        labels = GaugeMetricFamily(
            "carbonlabel_labels",
            "Labels stored in the registry, by kind and tier (registry-wide, read from the "
            "database; take max() across replicas).",
            labels=["kind", "tier"],
        )
        entries = GaugeMetricFamily(
            "carbonlabel_log_entries",
            "Entries in the transparency log: its tree size (registry-wide).",
        )
        age = GaugeMetricFamily(
            "carbonlabel_log_checkpoint_age_seconds",
            "Seconds since the newest checkpoint's tree: checkpoints are signed on demand over "
            "the log's head, so this is the time since the head's last append (registry-wide).",
        )
        if stats is not None:
            for (kind, tier), count in sorted(stats.labels.items()):
                labels.add_metric([kind, tier], count)
            entries.add_metric([], stats.log_entries)
            appended = stats.log_appended_at.timestamp()
            age.add_metric([], max(0.0, self.wall_clock() - appended))
        up.add_metric([], 0 if stats is None else 1)
        return up, labels, entries, age

    def describe(self) -> Iterable[Metric]:
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        stats = self.stats()
        up, *gauges = self._families(stats)
        return [up] if stats is None else [up, *gauges]
