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
from pipeline.identity import DeviceIdentity, device_key
from pipeline.sessions import SessionRules, SessionState
from pipeline.stream.enrich import process

__all__ = ["raw_records", "stage1_outputs"]

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


def stage1_outputs(count: int, *, seed: int, start: datetime) -> dict[str, list[bytes]]:
    """What stage 1 makes of ``raw_records``, per lake table (``events``, ``sessions``,
    ``identities``), as the JSON values it sends: realistic input for the sink."""
    rules = SessionRules(timedelta(minutes=30), timedelta(hours=24))
    identities: dict[str, DeviceIdentity] = {}
    sessions: dict[str, SessionState | None] = {}
    out: dict[str, list[bytes]] = {"events": [], "sessions": [], "identities": []}
    for _, value in raw_records(count, seed=seed, start=start):
        record = orjson.loads(value)
        key = device_key(record)
        identity, session, result = process(identities.get(key), sessions.get(key), record, rules)
        identities[key], sessions[key] = identity, session
        out["events"].append(orjson.dumps(result.enriched))
        out["sessions"] += [orjson.dumps(s) for s in result.sessions]
        out["identities"] += [orjson.dumps(i) for i in result.identities]
    return out
