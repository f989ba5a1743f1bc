"""One historic Segment message → one raw autocap record, by the collector's own rules.

``normalize`` (the collector's) validates and normalizes; the differences for history:

- ``receivedAt`` comes from the message when it has one, else it is the import's time.
- ``timestamp`` is kept as recorded. Segment's archives already hold the skew-corrected
  time there, so the collector's correction (``receivedAt - (sentAt - timestamp)``) is not
  applied again; ``sentAt`` is still stored. A timestamp more than 23 h after ``receivedAt``
  (or missing, or unparseable) falls back to ``receivedAt`` and is flagged, as live.
- A message without ``messageId`` gets an id derived from its content (a UUIDv7 whose time
  is the event's and whose other bits hash the message), not a random one: importing the
  same file again yields the same ids, which the lake deduplicates.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from collectors.http.normalize import Limits, Receipt, encode_record, normalize
from pipeline.errors import InvalidEvent
from pipeline.ids import uuid7
from pipeline.timeutil import format_ts, parse_ts

__all__ = ["content_event_id", "historic_record"]


def content_event_id(message: dict[str, Any]) -> str:
    """A deterministic UUIDv7 for a message without ``messageId``: the time bits from its
    timestamp (so ids still sort by time), the rest from a hash of its whole content."""
    canonical = orjson.dumps(message, option=orjson.OPT_SORT_KEYS, default=str)
    digest = hashlib.blake2b(canonical, digest_size=10).digest()
    at = parse_ts(message.get("timestamp")) or parse_ts(message.get("receivedAt"))
    ms = int(at.timestamp() * 1000) if at is not None else 0
    return uuid7(min(max(ms, 0), (1 << 48) - 1), digest)


def _time_field(message: dict[str, Any], key: str) -> datetime | None:
    value = message.get(key)
    if value is None:
        return None
    moment = parse_ts(value)
    if moment is None:
        raise InvalidEvent(key, "timestamp", "is not an ISO-8601 time")
    return moment


def historic_record(
    message: dict[str, Any], imported_at: datetime, limits: Limits
) -> tuple[dict[str, Any], bytes]:
    """The raw record for ``message`` and its encoded value; ``InvalidEvent`` if refused."""
    received_at = _time_field(message, "receivedAt") or imported_at
    sent_at = _time_field(message, "sentAt")
    if message.get("messageId") is None:
        message = {**message, "messageId": content_event_id(message)}
    # Without sentAt, normalize keeps the timestamp as recorded (no second skew correction).
    bare = {k: v for k, v in message.items() if k not in ("sentAt", "receivedAt")}
    record = normalize(bare, Receipt.at(received_at), limits=limits)
    record["sent_at"] = format_ts(sent_at) if sent_at is not None else None
    return record, encode_record(record, limits)
