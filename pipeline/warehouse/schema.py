"""Columns of the ``events`` table: the Arrow schema of the lake's event files.

An enriched record (the JSON on ``autocap.enriched``) maps to one row. ``context``,
``properties`` and ``traits`` are nested JSON objects kept as JSON text so any shape of
properties fits; the catalog types them as DuckDB ``JSON``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import pyarrow as pa

__all__ = ["EVENT_SCHEMA", "records_to_table"]

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
        pa.field("timestamp", _TS, nullable=False),
        pa.field("received_at", _TS, nullable=False),
        pa.field("sent_at", _TS),
        pa.field("context", pa.string()),
        pa.field("properties", pa.string()),
        pa.field("traits", pa.string()),
    ]
)

_JSON_COLUMNS = frozenset({"context", "properties", "traits"})
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
