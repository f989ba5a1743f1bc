"""autocap import's pure parts: reading JSONL/Parquet and the collector's rules for history."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collectors.http.normalize import Limits
from pipeline.backfill.records import content_event_id, historic_record
from pipeline.backfill.sources import open_source
from pipeline.errors import ImportFailed, InvalidEvent

NOW = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)


def test_history_keeps_its_timestamp_and_received_at() -> None:
    message = {
        "type": "track",
        "event": "Bought",
        "anonymousId": "a1",
        "messageId": "m1",
        "timestamp": "2026-03-01T10:00:00.000Z",
        "sentAt": "2026-03-01T10:00:05Z",  # already corrected by Segment: not applied again
        "receivedAt": "2026-03-01T10:00:01.5Z",
    }
    record, value = historic_record(message, NOW, Limits())
    assert record["event_id"] == "m1"
    assert record["timestamp"] == "2026-03-01T10:00:00.000Z"
    assert record["received_at"] == "2026-03-01T10:00:01.500Z"
    assert record["sent_at"] == "2026-03-01T10:00:05.000Z"
    assert orjson.loads(value) == record


def test_without_received_at_the_import_time_is_used() -> None:
    message = {"type": "page", "anonymousId": "a1", "timestamp": "2026-03-01T10:00:00Z"}
    record, _ = historic_record(message, NOW, Limits())
    assert record["received_at"] == "2027-01-05T12:00:00.000Z"
    assert record["timestamp"] == "2026-03-01T10:00:00.000Z"


def test_a_message_without_message_id_gets_the_same_id_every_time() -> None:
    message = {"type": "track", "event": "A", "userId": "u", "timestamp": "2026-03-01T10:00:00Z"}
    first, _ = historic_record(dict(message), NOW, Limits())
    again, _ = historic_record(dict(message), datetime(2030, 1, 1, tzinfo=UTC), Limits())
    other, _ = historic_record({**message, "event": "B"}, NOW, Limits())
    assert first["event_id"] == again["event_id"] == content_event_id(message)
    assert other["event_id"] != first["event_id"]
    # A UUIDv7 whose time is the event's: ids still sort by time.
    assert first["event_id"][:13].replace("-", "") == format(1772359200000, "012x")


@pytest.mark.parametrize(
    ("message", "field", "rule"),
    [
        ({"type": "track", "anonymousId": "a"}, "event", "required"),
        ({"type": "track", "event": "A"}, "anonymousId", "required"),
        (
            {"type": "track", "event": "A", "anonymousId": "a", "receivedAt": "x"},
            "receivedAt",
            "timestamp",
        ),
        (
            {"type": "track", "event": "A", "anonymousId": "a", "sentAt": "soon"},
            "sentAt",
            "timestamp",
        ),
        (
            {"type": "track", "event": "A", "anonymousId": "a", "properties": {"s": "x" * 70}},
            "properties.s",
            "max_length",
        ),
    ],
)
def test_invalid_messages_name_field_and_rule(message: dict, field: str, rule: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        historic_record(message, NOW, Limits(max_string=64))
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_jsonl_lines_numbered_bad_ones_explained(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(
            b'{"type":"page","anonymousId":"a"}\n\n[1,2]\n{broken\r\n{"type":"page","userId":"u"}\n'
        )
    source = open_source(path)
    assert source.format == "jsonl"
    items = list(source.items())
    assert [i.number for i in items] == [1, 3, 4, 5]
    assert [i.error.rule if i.error else None for i in items] == [None, "type", "json", None]
    assert items[2].raw == b"{broken"
    assert source.position() == 0 or source.position() <= source.total


def test_parquet_rows_with_structs_json_text_and_typed_times(tmp_path: Path) -> None:
    table = pa.table(
        {
            "type": ["track", "identify", "track"],
            "event": ["Bought", None, "Viewed"],
            "message_id": ["m1", "m2", None],
            "anonymous_id": ["a1", "a1", "a2"],
            "user_id": [None, "u1", None],
            "timestamp": pa.array(
                [datetime(2026, 3, 1, 10, 0, tzinfo=UTC)] * 3, pa.timestamp("ms", tz="UTC")
            ),
            "received_at": pa.array([datetime(2026, 3, 1, 10, 0, 1)] * 3, pa.timestamp("us")),
            "properties": ['{"plan": "pro"}', None, "{not json"],
            "context": pa.array(
                [{"page": {"url": "https://x/1"}}, None, None],
                pa.struct([("page", pa.struct([("url", pa.string())]))]),
            ),
        }
    )
    path = tmp_path / "history.parquet"
    pq.write_table(table, path)
    source = open_source(path)
    assert (source.format, source.total) == ("parquet", 3)
    first, second, bad = list(source.items())
    assert first.message == {
        "type": "track",
        "event": "Bought",
        "messageId": "m1",
        "anonymousId": "a1",
        "timestamp": "2026-03-01T10:00:00Z",
        "receivedAt": "2026-03-01T10:00:01Z",
        "properties": {"plan": "pro"},
        "context": {"page": {"url": "https://x/1"}},
    }
    assert second.message is not None and second.message["userId"] == "u1"
    assert bad.error is not None and (bad.error.field, bad.error.rule) == ("properties", "json")
    record, _ = historic_record(first.message, NOW, Limits())
    assert record["received_at"] == "2026-03-01T10:00:01.000Z"


def test_unreadable_inputs_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="no such file"):
        open_source(tmp_path / "missing.jsonl")
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b"PAR1 not really")
    with pytest.raises(ImportFailed, match="cannot read as parquet"):
        open_source(fake)
    with pytest.raises(ImportFailed, match="--format"):
        open_source(fake, "csv")
