"""One Segment-spec message → one raw autocap record. Pure: clock and client IP passed in.

The record is what goes on ``autocap.raw``: snake_case keys, ``event_id`` from ``messageId``
(a UUIDv7 when absent), ``received_at`` from the collector's clock, and ``timestamp``
corrected for the client's clock skew: ``received_at - (sent_at - timestamp)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from collectors.http.contract import check_limits, validate_message
from collectors.http.privacy import anonymize_ip
from pipeline.errors import InvalidEvent
from pipeline.ids import uuid7
from pipeline.settings import Settings
from pipeline.timeutil import format_ts, parse_ts

__all__ = [
    "CLAMPED_FLAG",
    "FALLBACK_FLAG",
    "MESSAGE_TYPES",
    "Limits",
    "Receipt",
    "encode_record",
    "normalize",
]

MESSAGE_TYPES = frozenset({"track", "page", "screen", "identify", "group", "alias"})

_MAX_FUTURE = timedelta(hours=23)
#: The event's own time could not be used (unparseable, out of range): receipt time kept.
FALLBACK_FLAG = "timestamp_fallback"
#: The corrected time was more than 23 h ahead of the collector: clamped to receipt time.
CLAMPED_FLAG = "timestamp_clamped"


@dataclass(frozen=True)
class Receipt:
    """What the collector knows of one request, worked out once for all its messages."""

    received_at: datetime
    received_text: str
    sent_at: datetime | None  # the batch's sentAt; a message's own sentAt wins
    sent_text: str | None
    client_ip: str | None  # already reduced as the IP mode says

    @classmethod
    def at(
        cls, received_at: datetime, batch_sent_at: object = None, client_ip: str | None = None
    ) -> Receipt:
        """A receipt for a request received at ``received_at``."""
        sent_at = parse_ts(batch_sent_at)
        sent_text = format_ts(sent_at) if sent_at else None
        return cls(received_at, format_ts(received_at), sent_at, sent_text, client_ip)


@dataclass(frozen=True)
class Limits:
    """Per-event limits (configurable; defaults like Segment's)."""

    max_event_bytes: int = 32_768
    max_depth: int = 16
    max_string: int = 16_384
    ip_mode: str = "truncate"

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits configured in ``settings``."""
        return cls(
            settings.max_event_bytes,
            settings.max_property_depth,
            settings.max_string_length,
            settings.ip_mode,
        )


def _identifier(message: dict[str, Any], key: str) -> str | None:
    # The schema has already refused placeholders; integers are kept as their text.
    value = message.get(key)
    return None if value is None else str(value)


def _event_time(
    message: dict[str, Any], received_at: datetime, sent_at: datetime | None
) -> tuple[datetime, str | None]:
    """Corrected event time, and the flag saying why it fell back to ``received_at``."""
    raw = message.get("timestamp")
    if raw is None:
        return received_at, None
    stamped = parse_ts(raw)
    if stamped is None:
        return received_at, FALLBACK_FLAG
    try:
        corrected = received_at - (sent_at - stamped) if sent_at is not None else stamped
    except OverflowError:  # an absurd sentAt/timestamp pair leaves datetime's range
        return received_at, FALLBACK_FLAG
    if corrected - received_at > _MAX_FUTURE:
        return received_at, CLAMPED_FLAG
    return corrected, None


def normalize(
    message: object, receipt: Receipt, *, default_type: str | None = None, limits: Limits = Limits()
) -> dict[str, Any]:
    """Validate and normalize one message, or raise ``InvalidEvent`` naming field and rule."""
    if not isinstance(message, dict):
        raise InvalidEvent("message", "type", "each message must be a JSON object")
    if default_type is not None:
        if message.get("type", default_type) != default_type:
            raise InvalidEvent(
                "type", "mismatch", f"{message.get('type')!r} sent to /v1/{default_type}"
            )
        message = {**message, "type": default_type}
    validate_message(message)
    # String lengths are checked on the encoded size (encode_record): cheaper, same verdict.
    check_limits(message, limits.max_depth, limits.max_string, check_strings=False)

    received_at = receipt.received_at
    own_sent = message.get("sentAt")
    sent_at = receipt.sent_at if own_sent is None else parse_ts(own_sent)
    timestamp, fell_back = _event_time(message, received_at, sent_at)
    original = message.get("originalTimestamp", message.get("timestamp"))
    # The message is ours (parsed from this request's body): update it in place.
    context = message.get("context") or {}
    own_ip = context.get("ip")
    ip = receipt.client_ip if own_ip is None else anonymize_ip(own_ip, limits.ip_mode)
    if ip is None:
        context.pop("ip", None)
    else:
        context["ip"] = ip
    kind = message["type"]
    record: dict[str, Any] = {
        "event_id": message.get("messageId") or uuid7(int(received_at.timestamp() * 1000)),
        "type": kind,
        "event": message["event"] if kind == "track" else message.get("name"),
        "anonymous_id": _identifier(message, "anonymousId"),
        "user_id": _identifier(message, "userId"),
        "group_id": _identifier(message, "groupId"),
        "previous_id": _identifier(message, "previousId"),
        "timestamp": receipt.received_text if timestamp is received_at else format_ts(timestamp),
        "original_timestamp": original if isinstance(original, str) else None,
        "sent_at": receipt.sent_text
        if own_sent is None
        else format_ts(sent_at)
        if sent_at
        else None,
        "received_at": receipt.received_text,
        "context": context,
        "properties": message.get("properties") or {},
        # RudderStack's SDKs send identify traits only as context.traits.
        "traits": message.get("traits") or context.get("traits") or {},
        "elements": message.get("elements"),
    }
    if fell_back:
        record["flags"] = [fell_back]
    return record


def encode_record(record: dict[str, Any], limits: Limits) -> bytes:
    """The record as JSON bytes for Kafka; ``InvalidEvent`` if it breaks a size limit."""
    value = orjson.dumps(record)
    if len(value) > limits.max_event_bytes:
        raise InvalidEvent(
            "message",
            "too_large",
            f"event is {len(value)} bytes, over the {limits.max_event_bytes}-byte limit",
        )
    if len(value) > limits.max_string:  # only then can one string be over the limit
        check_limits(record, limits.max_depth + 1, limits.max_string)
    return value
