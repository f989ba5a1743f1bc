"""Token buckets per write key and per client IP. Pure: time is passed in."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` events/s per key with bursts of ``burst_s`` seconds' worth; ``rate=0`` is off.

    At most ``max_keys`` buckets are kept (least recently used evicted), so a flood of
    distinct IPs cannot grow memory without bound; an evicted key simply starts full again.
    """

    def __init__(self, rate: float, burst_s: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * burst_s)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, count: int, now: float) -> float:
        """Spend ``count`` tokens; return 0 if allowed, else seconds until it would be."""
        if self.rate <= 0:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.capacity, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if count <= bucket.tokens:
            bucket.tokens -= count
            return 0.0
        # A request larger than the whole burst can never pass: say when the bucket is full.
        missing = min(count, self.capacity) - bucket.tokens
        return max(missing / self.rate, 0.001)

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """The ``Retry-After`` header value (whole seconds, at least 1)."""
        return str(max(1, math.ceil(wait_s)))
