"""The sink's fast path (a batch through DuckDB's JSON reader) gives the same table as the
record-by-record path, and refuses a batch with any bad record so the sink can go slowly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from bench.stream.traffic import stage1_outputs
from pipeline.warehouse.jsonl import json_lines_to_table
from pipeline.warehouse.schema import (
    EVENT_SCHEMA,
    IDENTITY_SCHEMA,
    JSON_COLUMNS,
    SESSION_SCHEMA,
    records_to_table,
)

START = datetime(2026, 11, 1, tzinfo=UTC)


def _stage1_outputs() -> dict[str, list[bytes]]:
    return stage1_outputs(1500, seed=3, start=START)


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
def test_fast_path_equals_the_record_by_record_path(
    table: str, schema: pa.Schema, tmp_path: Path
) -> None:
    values = _stage1_outputs()[table]
    assert len(values) > 10
    fast = json_lines_to_table(values, schema, tmp_path)
    slow = records_to_table([orjson.loads(v) for v in values], schema)
    assert fast.schema == schema
    assert _comparable(fast) == _comparable(slow)
    assert list(tmp_path.iterdir()) == []  # its temporary file is gone


@pytest.mark.parametrize(
    "bad",
    [
        b"{not json",
        b'{"type": "track", "timestamp": "2026-11-23T10:00:00Z"}',  # no event_id
        b'{"event_id": "x", "type": "track", "timestamp": "yesterday",'
        b' "received_at": "2026-11-23T10:00:00Z"}',
        b'{"event_id": "x",\n "type": "track"}',  # two lines
    ],
)
def test_a_batch_with_one_bad_record_is_refused_whole(bad: bytes, tmp_path: Path) -> None:
    values = _stage1_outputs()["events"][:5]
    with pytest.raises(ValueError):
        json_lines_to_table([*values, bad], EVENT_SCHEMA, tmp_path)
    assert list(tmp_path.iterdir()) == []
