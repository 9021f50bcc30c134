"""Token-bucket rate limiting of label submissions, per API token.

This limiter keeps its buckets in the process's memory: with several server processes each holds
its own buckets (shared state across processes is issue 5's work).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from registry.errors import ProblemError


class RateLimiter:
    def __init__(
        self,
        *,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate_per_s = per_minute / 60.0
        self.burst = max(burst, 1)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def check(self, key: str) -> None:
        """Take one token for ``key`` or raise a 429 ``rate-limited`` problem with Retry-After."""
        if not self.enabled:
            return
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            if tokens < 1.0:
                retry_after_s = math.ceil((1.0 - tokens) / self.rate_per_s)
                self._buckets[key] = (tokens, now)
                raise ProblemError(
                    "rate-limited",
                    f"too many submissions: at most {round(self.rate_per_s * 60)} per minute",
                    headers={"Retry-After": str(retry_after_s)},
                )
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()
            self._buckets[key] = (tokens - 1.0, now)
