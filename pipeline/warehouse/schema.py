"""Columns of the ``events`` table: the Arrow schema of the lake's event files.

An enriched record (the JSON on ``autocap.enriched``) maps to one row. ``context``,
``properties``, ``traits`` and ``elements`` are nested JSON kept as JSON text so any shape
fits; the catalog types them as DuckDB ``JSON``. ``MESSAGE_FIELD_COLUMNS`` says where each
field of ``schemas/event.schema.json`` lands (a test holds the two together).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import pyarrow as pa

__all__ = ["EVENT_SCHEMA", "MESSAGE_FIELD_COLUMNS", "records_to_table"]

_TS = pa.timestamp("ms", tz="UTC")

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("event", pa.string()),
        pa.field("anonymous_id", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("person_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("account_id", pa.string()),
        pa.field("previous_id", pa.string()),
        pa.field("timestamp", _TS, nullable=False),
        pa.field("received_at", _TS, nullable=False),
        pa.field("sent_at", _TS),
        pa.field("original_timestamp", pa.string()),
        pa.field("context", pa.string()),
        pa.field("properties", pa.string()),
        pa.field("traits", pa.string()),
        pa.field("elements", pa.string()),
        pa.field("flags", pa.list_(pa.string())),
    ]
)

#: Event JSON Schema property -> events column (None: deliberately not stored).
MESSAGE_FIELD_COLUMNS: dict[str, str | None] = {
    "type": "type",
    "event": "event",
    "name": "event",  # page/screen name
    "messageId": "event_id",
    "anonymousId": "anonymous_id",
    "userId": "user_id",
    "groupId": "account_id",
    "previousId": "previous_id",
    "timestamp": "timestamp",
    "originalTimestamp": "original_timestamp",
    "sentAt": "sent_at",
    "context": "context",
    "properties": "properties",
    "traits": "traits",
    "elements": "elements",
    "integrations": None,  # destination routing hints; autocap has no destinations
}

_JSON_COLUMNS = frozenset({"context", "properties", "traits", "elements"})
_TIME_COLUMNS = frozenset(f.name for f in EVENT_SCHEMA if f.type == _TS)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value).decode()


def records_to_table(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build an Arrow table with ``EVENT_SCHEMA`` from enriched records (missing keys → null).

    Timestamps arrive as ISO-8601 UTC strings and are parsed by Arrow in bulk.
    """
    rows = list(records)
    arrays = []
    for f in EVENT_SCHEMA:
        values = [r.get(f.name) for r in rows]
        if f.name in _JSON_COLUMNS:
            arrays.append(pa.array([_json_text(v) for v in values], pa.string()))
        elif f.name in _TIME_COLUMNS:
            arrays.append(pa.array(values, pa.string()).cast(_TS))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)
