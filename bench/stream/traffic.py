"""Realistic raw records for stage 1: what the collector writes to ``raw``, in arrival order.

Visitors browse in sessions (gaps of seconds to hours, so sessions end and restart), a fifth
of them identify part-way, and every message is an autocaptured event with page context and
an element chain (``bench.collector.events``). Seeded: one seed, one traffic.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import orjson

from bench.collector.events import make_message
from collectors.http.normalize import Receipt, normalize

__all__ = ["raw_records"]

_GAPS_S = (2, 5, 10, 30, 60, 300, 1500, 2400, 7200)


def raw_records(count: int, *, seed: int, start: datetime) -> list[tuple[bytes, bytes]]:
    """``count`` (key, value) records for the raw topic, keyed by anonymous_id, time-ordered."""
    rng = random.Random(seed)
    timed: list[tuple[datetime, bytes, bytes]] = []
    visitor = 0
    while len(timed) < count:
        anonymous_id = f"anon-{seed}-{visitor:07d}"
        at = start + timedelta(seconds=rng.randrange(86_400))
        identify_at = rng.randrange(2, 8) if visitor % 5 == 0 else -1
        for n in range(min(rng.randint(3, 15), count - len(timed))):
            at += timedelta(seconds=rng.choice(_GAPS_S))
            message = make_message(rng, anonymous_id, at)
            if n == identify_at:
                message = {**message, "type": "identify", "userId": f"user-{visitor // 2}"}
                message.pop("event")
            record = normalize(message, Receipt.at(at))
            timed.append((at, anonymous_id.encode(), orjson.dumps(record)))
        visitor += 1
    timed.sort(key=lambda item: item[0])
    return [(key, value) for _, key, value in timed]
