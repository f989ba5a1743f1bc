"""Stage-1 rule for the walking skeleton: a raw event becomes an enriched record.

Pure: no Kafka, no clock. Identity resolution and sessionization replace the placeholder
``person_id``/``session_id`` here (issue 5) and the batch path calls the same function.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.errors import InvalidEvent

__all__ = ["decode_raw", "enrich"]


def decode_raw(value: bytes | None) -> dict[str, Any]:
    """Decode a record from the raw topic; ``InvalidEvent`` says what is wrong."""
    if not value:
        raise InvalidEvent("value", "required", "empty record")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidEvent("value", "json", "record is not valid JSON") from None
    if not isinstance(record, dict):
        raise InvalidEvent("value", "type", "record is not a JSON object")
    for key in ("event_id", "type", "timestamp", "received_at"):
        if not isinstance(record.get(key), str):
            raise InvalidEvent(key, "required", f"{key} missing or not a string")
    if not (record.get("anonymous_id") or record.get("user_id")):
        raise InvalidEvent("anonymous_id", "required", "neither anonymous_id nor user_id")
    return record


def enrich(record: dict[str, Any]) -> dict[str, Any]:
    """Add the placeholders later stages fill: person_id (user, else device), account_id."""
    person_id = record.get("user_id") or record.get("anonymous_id")
    return {
        **record,
        "person_id": person_id,
        "session_id": record.get("session_id"),
        "account_id": record.get("group_id") or record.get("account_id"),
    }
