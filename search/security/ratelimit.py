"""Token-bucket rate limits per caller (an API key, or a client address), for the expensive routes.

Each caller has a bucket of ``rate.count`` tokens refilled continuously at ``count / period`` per second;
a request takes one token or is told how long to wait. The clock is injected, so tests drive it by hand.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+?)s?\s*$")
OFF = {"", "off", "none", "0"}


@dataclass(frozen=True)
class Rate:
    """``count`` requests per ``period_s`` seconds, as a sustained rate and as the burst allowed."""

    count: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """``"30/minute"``, ``"5/second"``, ``"1000/hour"`` (also ``s``, ``min``, ``h``); ``"off"`` gives ``None``.

        Raises:
            ValueError: any other text.
        """
        if text.strip().lower() in OFF:
            return None
        match = _RATE.match(text.lower())
        if match is None or match.group(2) not in _PERIODS or int(match.group(1)) < 1:
            raise ValueError(f"a rate limit looks like 30/minute, 5/second or 1000/hour (or off), not {text!r}")
        return cls(int(match.group(1)), _PERIODS[match.group(2)])

    @property
    def per_second(self) -> float:
        return self.count / self.period_s


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Buckets per caller, held by the app (``app.state.rate_limiter``), never in module globals.

    Args:
        rate: the limit each caller gets.
        clock: seconds from a monotonic clock (tests pass a fake one).
        max_callers: buckets kept at most; past it, full (idle) buckets are dropped, then the oldest.
    """

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic, max_callers: int = 10_000) -> None:
        self.rate = rate
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, caller: str) -> float:
        """Take one token for ``caller``: ``0.0`` when granted, else the seconds until one is available."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                self._make_room(now)
                bucket = self._buckets[caller] = _Bucket(float(self.rate.count), now)
            else:
                elapsed = max(0.0, now - bucket.updated)
                bucket.tokens = min(float(self.rate.count), bucket.tokens + elapsed * self.rate.per_second)
                bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate.per_second

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """The ``Retry-After`` header value (whole seconds, at least 1) for a wait."""
        return str(max(1, math.ceil(wait_s)))

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_callers:
            return
        full = [
            name
            for name, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate.per_second >= self.rate.count
        ]
        for name in full:
            del self._buckets[name]
        while len(self._buckets) >= self.max_callers:  # dicts keep insertion order: the oldest go first
            del self._buckets[next(iter(self._buckets))]
