"""One Segment-spec message → one raw autocap record. Pure: the clock is passed in.

The record is what goes on ``autocap.raw``: snake_case keys, ``event_id`` from ``messageId``
(a UUIDv7 when absent), ``received_at`` from the collector's clock, and ``timestamp``
corrected for the client's clock skew: ``received_at - (sent_at - timestamp)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pipeline.errors import InvalidEvent
from pipeline.ids import uuid7
from pipeline.timeutil import format_ts, parse_ts

__all__ = ["JUNK_IDS", "MESSAGE_TYPES", "normalize"]

MESSAGE_TYPES = frozenset({"track", "page", "screen", "identify", "group", "alias"})

#: Identifiers buggy clients send that would merge strangers into one person.
JUNK_IDS = frozenset(
    {
        "null",
        "undefined",
        "none",
        "nil",
        "0",
        "-1",
        "anonymous",
        "guest",
        "[object object]",
        "nan",
        "unknown",
    }
)

_MAX_FUTURE = timedelta(hours=23)
_MAX_ID_LENGTH = 256


def _identifier(message: Mapping[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidEvent(key, "type", f"{key} must be a string")
    text = str(value)
    if not text.strip() or text.strip().lower() in JUNK_IDS:
        raise InvalidEvent(key, "junk_id", f"{key} {text[:20]!r} is a placeholder, not an id")
    if len(text) > _MAX_ID_LENGTH:
        raise InvalidEvent(key, "too_long", f"{key} is longer than {_MAX_ID_LENGTH} characters")
    return text


def _object(message: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = message.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidEvent(key, "type", f"{key} must be a JSON object")
    return value


def _event_time(
    message: Mapping[str, Any], received_at: datetime, sent_at: datetime | None
) -> tuple[datetime, bool]:
    """Corrected event time, and whether it fell back to ``received_at``."""
    raw = message.get("timestamp")
    if raw is None:
        return received_at, False
    stamped = parse_ts(raw)
    if stamped is None:
        return received_at, True
    corrected = received_at - (sent_at - stamped) if sent_at is not None else stamped
    if corrected - received_at > _MAX_FUTURE:
        return received_at, True
    return corrected, False


def normalize(
    message: object,
    *,
    received_at: datetime,
    batch_sent_at: object = None,
    default_type: str | None = None,
) -> dict[str, Any]:
    """Validate and normalize one message, or raise ``InvalidEvent`` naming the field."""
    if not isinstance(message, dict):
        raise InvalidEvent("message", "type", "each message must be a JSON object")
    kind = message.get("type", default_type)
    if kind not in MESSAGE_TYPES:
        raise InvalidEvent(
            "type", "enum", f"type must be one of {', '.join(sorted(MESSAGE_TYPES))}"
        )
    if default_type is not None and kind != default_type:
        raise InvalidEvent("type", "mismatch", f"type {kind!r} sent to /v1/{default_type}")
    anonymous_id = _identifier(message, "anonymousId")
    user_id = _identifier(message, "userId")
    if anonymous_id is None and user_id is None:
        raise InvalidEvent("anonymousId", "required", "anonymousId or userId is required")
    event = message.get("event")
    if kind == "track" and (not isinstance(event, str) or not event.strip()):
        raise InvalidEvent("event", "required", "track messages need an event name")
    message_id = message.get("messageId")
    if message_id is not None and (
        not isinstance(message_id, str)
        or not message_id.strip()
        or len(message_id) > _MAX_ID_LENGTH
    ):
        raise InvalidEvent("messageId", "type", "messageId must be a non-empty string")

    sent_at = parse_ts(message.get("sentAt", batch_sent_at))
    timestamp, clamped = _event_time(message, received_at, sent_at)
    original = message.get("originalTimestamp", message.get("timestamp"))
    record: dict[str, Any] = {
        "event_id": message_id or uuid7(int(received_at.timestamp() * 1000)),
        "type": kind,
        "event": event if kind == "track" else (message.get("name") or None),
        "anonymous_id": anonymous_id,
        "user_id": user_id,
        "group_id": _identifier(message, "groupId"),
        "previous_id": _identifier(message, "previousId"),
        "timestamp": format_ts(timestamp),
        "original_timestamp": original if isinstance(original, str) else None,
        "sent_at": format_ts(sent_at) if sent_at else None,
        "received_at": format_ts(received_at),
        "context": _object(message, "context") or {},
        "properties": _object(message, "properties") or {},
        "traits": _object(message, "traits") or {},
    }
    if clamped:
        record["flags"] = ["timestamp_fallback"]
    return record
