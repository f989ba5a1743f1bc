"""Columns of the lake's tables: ``events``, ``sessions``, ``identities``, ``profiles``,
``accounts`` and ``cohort_changes``.

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

__all__ = [
    "ACCOUNT_SCHEMA",
    "COHORT_CHANGE_SCHEMA",
    "DEFINED_TAGS_SCHEMA",
    "EVENT_SCHEMA",
    "FUNNEL_TABLE_SCHEMA",
    "IDENTITY_SCHEMA",
    "JSON_COLUMNS",
    "MESSAGE_FIELD_COLUMNS",
    "PROFILE_SCHEMA",
    "SESSION_SCHEMA",
    "TABLES",
    "records_to_table",
]

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
        pa.field("session_seq", pa.int64()),
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
        pa.field("defined_events", pa.list_(pa.string())),
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

#: One row per session summary emitted by stage 1 (the catalog keeps the latest).
SESSION_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("anonymous_id", pa.string(), nullable=False),
        pa.field("seq", pa.int64()),
        pa.field("start", _TS),
        pa.field("end", _TS),
        pa.field("duration_s", pa.float64()),
        pa.field("events", pa.int64()),
        pa.field("pageviews", pa.int64()),
        pa.field("entry_url", pa.string()),
        pa.field("exit_url", pa.string()),
        pa.field("referrer", pa.string()),
        pa.field("campaign", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("browser", pa.string()),
        pa.field("os", pa.string()),
        pa.field("device", pa.string()),
    ]
)

#: The identity ledger: every link, alias and device switch, with the event behind it.
IDENTITY_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("from_person", pa.string(), nullable=False),
        pa.field("to_person", pa.string(), nullable=False),
        pa.field("anonymous_id", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("previous_id", pa.string()),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("timestamp", _TS),
        pa.field("received_at", _TS),
        pa.field("devices", pa.int64()),  # many_devices flags: how many, over which limit
        pa.field("limit", pa.int64()),
    ]
)

#: One row per profile version stage 2 emits (``pipeline.profiles.profile_record``); the
#: lake view keeps each person's highest version. Traits and custom properties are JSON.
PROFILE_SCHEMA = pa.schema(
    [
        pa.field("person_id", pa.string(), nullable=False),
        pa.field("version", pa.int64()),
        pa.field("first_seen", _TS),
        pa.field("last_seen", _TS),
        pa.field("event_count", pa.int64()),
        pa.field("session_count", pa.int64()),
        pa.field("initial_referrer", pa.string()),
        pa.field("initial_utm_source", pa.string()),
        pa.field("last_url", pa.string()),
        pa.field("browser", pa.string()),
        pa.field("os", pa.string()),
        pa.field("device", pa.string()),
        pa.field("country", pa.string()),
        pa.field("email_domain", pa.string()),
        pa.field("email_kind", pa.string()),
        pa.field("account_ids", pa.list_(pa.string())),
        pa.field("traits", pa.string()),
        pa.field("properties", pa.string()),
    ]
)

#: One row per account version (``pipeline.accounts.account_record``); latest kept.
ACCOUNT_SCHEMA = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("version", pa.int64()),
        pa.field("name", pa.string()),
        pa.field("industry", pa.string()),
        pa.field("employees", pa.int64()),
        pa.field("employee_band", pa.string()),
        pa.field("annual_revenue", pa.float64()),
        pa.field("revenue_band", pa.string()),
        pa.field("country", pa.string()),
        pa.field("region", pa.string()),
        pa.field("sic_code", pa.string()),
        pa.field("naics_code", pa.string()),
        pa.field("technologies", pa.list_(pa.string())),
        pa.field("traits", pa.string()),
        pa.field("members", pa.int64()),
        pa.field("active_users_7d", pa.int64()),
        pa.field("active_users_30d", pa.int64()),
        pa.field("titles", pa.list_(pa.string())),
        pa.field("roles", pa.list_(pa.string())),
        pa.field("lead_score", pa.float64()),
        pa.field("last_activity", _TS),
        pa.field("business_users", pa.int64()),
        pa.field("consumer_users", pa.int64()),
    ]
)

#: One row per cohort enter/exit stage 2 sends (``pipeline.cohorts.advance``); ``detail``
#: (what each criterion observed) is JSON.
COHORT_CHANGE_SCHEMA = pa.schema(
    [
        pa.field("cohort", pa.string(), nullable=False),
        pa.field("subject_kind", pa.string(), nullable=False),
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("change", pa.string(), nullable=False),
        pa.field("at", _TS, nullable=False),
        pa.field("criterion", pa.string()),
        pa.field("event_id", pa.string()),
        pa.field("detail", pa.string()),
    ]
)

#: Lake table -> (logical topic it is fed from, Arrow schema).
TABLES: dict[str, tuple[str, pa.Schema]] = {
    "events": ("enriched", EVENT_SCHEMA),
    "sessions": ("sessions", SESSION_SCHEMA),
    "identities": ("identities", IDENTITY_SCHEMA),
    "profiles": ("profiles", PROFILE_SCHEMA),
    "accounts": ("accounts", ACCOUNT_SCHEMA),
    "cohort_changes": ("cohort_changes", COHORT_CHANGE_SCHEMA),
}

#: Published by the materializer: for every event it has looked at, the defined events it
#: is an occurrence of (possibly none) under the definitions version it used.
DEFINED_TAGS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("names", pa.list_(pa.string())),
        pa.field("version", pa.string(), nullable=False),
        pa.field("tagged_at", _TS, nullable=False),
    ]
)

#: Published by the materializer: one row per step of a ``funnels:`` definition.
FUNNEL_TABLE_SCHEMA = pa.schema(
    [
        pa.field("step_index", pa.int64(), nullable=False),
        pa.field("step", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("conversion_from_previous", pa.float64()),
        pa.field("conversion_from_first", pa.float64()),
        pa.field("dropped", pa.int64()),
        pa.field("in_flight", pa.int64()),
        pa.field("median_time_to_convert_s", pa.float64()),
        pa.field("as_of", _TS, nullable=False),
    ]
)

JSON_COLUMNS = frozenset({"context", "properties", "traits", "elements", "campaign", "detail"})


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value).decode()


def records_to_table(
    records: Iterable[Mapping[str, Any]], schema: pa.Schema = EVENT_SCHEMA
) -> pa.Table:
    """Build an Arrow table with ``schema`` from JSON records (missing keys → null).

    Timestamps arrive as ISO-8601 UTC strings and are parsed by Arrow in bulk; nested JSON
    columns are kept as JSON text.
    """
    rows = list(records)
    arrays = []
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if f.name in JSON_COLUMNS:
            arrays.append(pa.array([_json_text(v) for v in values], pa.string()))
        elif f.type == _TS:
            arrays.append(pa.array(values, pa.string()).cast(_TS))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)
