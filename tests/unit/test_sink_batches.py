"""The sink's buffer (offsets per partition, when a batch is due) and its batch write (one
durable file per table, seeds skipped, bad records returned for the dead-letter topic)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq
from prometheus_client import CollectorRegistry

from pipeline.metrics import SinkMetrics
from pipeline.seeds import seed_record
from pipeline.warehouse.batches import BatchWriter, Buffer
from pipeline.warehouse.catalog import CatalogPublisher
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import TABLES
from tests.unit.sink_records import AT, TP, Rec


def _records(topic: str, partition: int, offsets: range) -> list[Rec]:
    return [Rec(topic, partition, o, b"{}") for o in offsets]


def test_buffer_keeps_the_next_offset_of_each_partition_and_takes_everything() -> None:
    buffer = Buffer(max_records=10, max_seconds=60.0)
    buffer.add({TP("ev", 0): _records("ev", 0, range(0, 3)), TP("ev", 1): []})
    buffer.add(
        {TP("ev", 0): _records("ev", 0, range(3, 5)), TP("se", 2): _records("se", 2, range(7, 8))}
    )
    assert len(buffer) == 6 and not buffer.due()
    batch = buffer.take()
    assert batch.offsets == {TP("ev", 0): 5, TP("se", 2): 8}
    assert [len(v) for v in batch.values.values()] == [5, 1]
    assert len(buffer) == 0 and buffer.take().records == 0


def test_buffer_is_due_at_max_records_or_when_its_oldest_is_old() -> None:
    now = [100.0]
    buffer = Buffer(max_records=4, max_seconds=1.0, clock=lambda: now[0])
    assert not buffer.due()
    buffer.add({TP("ev", 0): _records("ev", 0, range(2))})
    now[0] = 100.9
    assert not buffer.due()
    now[0] = 101.0
    assert buffer.due()
    buffer.take()
    buffer.add({TP("ev", 0): _records("ev", 0, range(2, 6))})
    assert buffer.due()


def test_writer_writes_one_file_per_table_skips_seeds_and_returns_bad_records(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path / "lake")
    registry = CollectorRegistry()
    publisher = CatalogPublisher(tmp_path / "warehouse.duckdb", lake, 0.0)
    tables = {f"t.{topic}": (table, schema) for table, (topic, schema) in TABLES.items()}
    for table, schema in tables.values():
        lake.ensure_table(table, schema)
    writer = BatchWriter(lake, publisher, SinkMetrics.create(registry), tables)
    buffer = Buffer(max_records=100, max_seconds=1.0)
    event = {"event_id": "e1", "type": "track", "timestamp": AT, "received_at": AT}
    values = [
        orjson.dumps(event),
        seed_record("u:1", "seed-1", {}, 0, []),
        b"{broken",
        orjson.dumps(event | {"event_id": "e2"}),
    ]
    session = {"session_id": "s1", "anonymous_id": "a1", "start": AT, "events": 2}
    buffer.add(
        {
            TP("t.enriched", 0): [Rec("t.enriched", 0, i, v) for i, v in enumerate(values)],
            TP("t.sessions", 0): [Rec("t.sessions", 0, 0, orjson.dumps(session))],
        }
    )
    rejected = writer.write(buffer.take())
    assert [r.payload for r in rejected] == [b"{broken"]
    [events_file] = lake.data_files("events")
    assert pq.read_table(events_file).column("event_id").to_pylist() == ["e1", "e2"]
    assert len(lake.data_files("sessions")) == 1
    assert lake.data_files("profiles") == []
    rows = registry.get_sample_value("autocap_sink_rows_written_total", {"table": "events"})
    assert rows == 2
    assert (tmp_path / "warehouse.duckdb").exists()  # republished (due at once here)
