"""The sink's decoder (msgspec → Arrow): every field type, nulls, nested JSON kept as its
text, and records that do not fit left out with a reason while the rest of the batch lands."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pytest

from bench.stream.traffic import stage1_outputs
from pipeline.errors import UndecodableRecord
from pipeline.warehouse.decode import TableDecoder
from pipeline.warehouse.schema import (
    ACCOUNT_SCHEMA,
    EVENT_SCHEMA,
    IDENTITY_SCHEMA,
    JSON_COLUMNS,
    SESSION_SCHEMA,
    TABLES,
    records_to_table,
)

START = datetime(2026, 11, 1, tzinfo=UTC)
AT = "2026-11-23T10:00:00.123Z"
AT_DT = datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)


def _events() -> TableDecoder:
    return TableDecoder("events", EVENT_SCHEMA)


def _event(**fields: object) -> dict[str, object]:
    return {"event_id": "e1", "type": "track", "timestamp": AT, "received_at": AT, **fields}


def _comparable(table: pa.Table) -> list[dict[str, object]]:
    rows = table.to_pylist()
    for row in rows:
        for name in JSON_COLUMNS & set(row):
            row[name] = None if row[name] is None else orjson.loads(row[name])
    return rows


@pytest.mark.parametrize(
    ("table", "schema"),
    [("events", EVENT_SCHEMA), ("sessions", SESSION_SCHEMA), ("identities", IDENTITY_SCHEMA)],
)
def test_stage1_output_decodes_as_the_reference_path(table: str, schema: pa.Schema) -> None:
    values = stage1_outputs(1500, seed=3, start=START)[table]
    assert len(values) > 10
    decoded = TableDecoder(table, schema).decode(values)
    assert decoded.rejected == []
    assert decoded.table.schema == schema
    reference = records_to_table([orjson.loads(v) for v in values], schema)
    assert _comparable(decoded.table) == _comparable(reference)


def test_every_table_has_a_decoder() -> None:
    for table, (_, schema) in TABLES.items():
        assert TableDecoder(table, schema).decode([]).table.schema == schema


def test_every_event_field_type_lands_exactly() -> None:
    nested = {
        "page": {"path": "/pricing", "title": "Prix — été ✓", "search": "?q=1"},
        "screen": {"width": 1920, "ratio": 1.5},
        "library": {"name": "autocap.js", "beta": True, "tags": ["a", None]},
    }
    elements = [{"tag": "button", "classes": ["btn", "primary"], "nth-child": 2}, {"tag": "body"}]
    record = _event(
        event="$click",
        anonymous_id="anon-1",
        user_id="user-1",
        person_id="u:user-1",
        session_id="s-1",
        session_seq=9_007_199_254_740_993,  # beyond a double's exact integers
        account_id="acme",
        previous_id="anon-0",
        sent_at="2026-11-23T10:00:01.000Z",
        original_timestamp="2026-11-23T09:59:59.500+01:00",
        context=nested,
        properties={"plan": "pro", "seats": 3, "price": 9.5, "tags": [], "none": None},
        traits="just text",
        elements=elements,
        flags=["late_event"],
        defined_events=[],
        unknown_field={"ignored": True},
    )
    decoded = _events().decode([orjson.dumps(record)])
    assert decoded.rejected == []
    [row] = decoded.table.to_pylist()
    assert row["event_id"] == "e1" and row["type"] == "track" and row["event"] == "$click"
    assert row["session_seq"] == 9_007_199_254_740_993
    assert row["timestamp"] == AT_DT and row["received_at"] == AT_DT
    assert row["sent_at"] == datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC)
    assert row["original_timestamp"] == "2026-11-23T09:59:59.500+01:00"  # kept as text
    assert orjson.loads(row["context"]) == nested
    assert orjson.loads(row["properties"])["none"] is None
    assert row["traits"] == '"just text"'  # any JSON value: its JSON text
    assert orjson.loads(row["elements"]) == elements
    assert row["flags"] == ["late_event"] and row["defined_events"] == []
    assert "Prix — été ✓" in row["context"]


def test_missing_and_null_fields_are_null() -> None:
    explicit_nulls = _event(
        event=None, user_id=None, session_seq=None, sent_at=None, properties=None, flags=None
    )
    decoded = _events().decode([orjson.dumps(_event()), orjson.dumps(explicit_nulls)])
    assert decoded.rejected == []
    for row in decoded.table.to_pylist():
        for name in ("event", "user_id", "session_seq", "sent_at", "properties", "context"):
            assert row[name] is None, name
        assert row["flags"] is None


def test_floats_take_integers_and_ints_refuse_floats() -> None:
    decoder = TableDecoder("accounts", ACCOUNT_SCHEMA)
    good = {"account_id": "acme", "annual_revenue": 5_000_000, "lead_score": 0.25}
    bad = {"account_id": "beta", "employees": 12.5}
    decoded = decoder.decode([orjson.dumps(good), orjson.dumps(bad)])
    [row] = decoded.table.to_pylist()
    assert row["annual_revenue"] == 5_000_000.0 and row["lead_score"] == 0.25
    [refused] = decoded.rejected
    assert "employees" in refused.reason and refused.payload == orjson.dumps(bad)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"{not json", "JSON"),
        (b"[1, 2]", "Expected `object`"),
        (orjson.dumps({"type": "track", "timestamp": AT, "received_at": AT}), "event_id"),
        (orjson.dumps(_event(event_id=None)), "event_id"),
        (orjson.dumps(_event(user_id=42)), "user_id"),
        (orjson.dumps(_event(session_seq="3")), "session_seq"),
        (orjson.dumps(_event(flags="late_event")), "flags"),
        (
            b'{"event_id": "e", "type": "t", "timestamp": "' + AT.encode() + b'",'
            b' "received_at": "' + AT.encode() + b'", "session_seq": 99999999999999999999}',
            "session_seq",
        ),
        (orjson.dumps(_event(timestamp="yesterday")), "timestamp"),
        (orjson.dumps(_event(sent_at="2026-13-45T99:00:00Z")), "sent_at"),
        (b'{"event_id": "e\xff", "type": "t"}', "UTF-8"),
        (None, "empty record"),
    ],
)
def test_a_bad_record_is_refused_with_its_reason_and_the_rest_lands(
    bad: bytes | None, reason: str
) -> None:
    good = [orjson.dumps(_event(event_id=f"g{i}")) for i in range(3)]
    decoded = _events().decode([good[0], bad, good[1], good[2]])
    assert decoded.table.column("event_id").to_pylist() == ["g0", "g1", "g2"]
    [refused] = decoded.rejected
    assert isinstance(refused, UndecodableRecord)
    assert refused.payload == (bad or b"")
    assert reason.lower() in refused.reason.lower(), refused.reason
    assert str(refused).startswith("events: ") and "dead-lettered" in str(refused)


def test_timestamps_in_other_iso_spellings_are_taken_as_utc() -> None:
    values = [
        orjson.dumps(_event(event_id="a", timestamp="2026-11-23T10:00:00.123")),  # naive: UTC
        orjson.dumps(_event(event_id="b", timestamp="2026-11-23T11:00:00.123+01:00")),
        orjson.dumps(_event(event_id="c", timestamp="2026-11-23T10:00:00.123456Z")),
        orjson.dumps(_event(event_id="d", timestamp="not a time")),
    ]
    decoded = _events().decode(values)
    assert decoded.table.column("timestamp").to_pylist() == [AT_DT, AT_DT, AT_DT]
    assert [r.payload for r in decoded.rejected] == [values[3]]


def test_invalid_utf8_inside_nested_json_is_refused() -> None:
    bad = b'{"event_id": "x", "type": "t", "timestamp": "%s", "received_at": "%s",' % (
        AT.encode(),
        AT.encode(),
    )
    bad += b' "properties": {"k": "\xc3\x28"}}'
    decoded = _events().decode([orjson.dumps(_event()), bad])
    assert decoded.table.num_rows == 1
    [refused] = decoded.rejected
    assert refused.payload == bad
