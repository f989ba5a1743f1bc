"""The sink's commit discipline without a broker: batches complete in order and commit only
after their files exist, a rebalance writes and commits what is held, what is fetched
during it is dropped, and a partition given away is never committed."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import orjson
import pyarrow.parquet as pq
from prometheus_client import CollectorRegistry

from pipeline.metrics import SinkMetrics
from pipeline.settings import Settings
from pipeline.warehouse.catalog import CatalogPublisher
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.sink import EventSink
from tests.unit.sink_records import AT, TP, Rec


class FakeConsumer:
    """Records each commit with the event ids durable in the lake at that moment."""

    def __init__(self, lake: Lake, assigned: set[TP]) -> None:
        self.lake = lake
        self.assigned = assigned
        self.commits: list[tuple[dict[Any, int], int]] = []

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def commit(self, offsets: dict[Any, int]) -> None:
        durable = sum(pq.read_metadata(p).num_rows for p in self.lake.data_files("events"))
        self.commits.append((dict(offsets), durable))


def _events(topic: str, partition: int, offsets: range) -> list[Rec]:
    return [
        Rec(
            topic,
            partition,
            o,
            orjson.dumps(
                {"event_id": f"{partition}-{o}", "type": "t", "timestamp": AT, "received_at": AT}
            ),
        )
        for o in offsets
    ]


async def _drive(sink: EventSink, consumer: FakeConsumer, topic: str) -> None:
    sink._consumer = consumer
    sink._lock = asyncio.Lock()
    p0, p1 = TP(topic, 0), TP(topic, 1)
    # Batch 1 (due at 4 records) goes in flight; batch 2 is fetched while it is written.
    sink._buffer.add({p0: _events(topic, 0, range(0, 2)), p1: _events(topic, 1, range(0, 2))})
    async with sink._lock:
        await sink._advance()
    assert sink._inflight is not None
    sink._buffer.add({p0: _events(topic, 0, range(2, 6))})
    async with sink._lock:
        await sink._advance()  # waits for batch 1, commits it, then sends batch 2
    # A rebalance: what is held is written and committed before the partitions go.
    sink._buffer.add({p1: _events(topic, 1, range(2, 3))})
    await sink.settle()
    # Fetched during the rebalance: dropped, read again from the committed offsets.
    sink._buffer.add({p1: _events(topic, 1, range(3, 5))})
    consumer.assigned = {p0}
    sink.reassigned()
    assert len(sink._buffer) == 0 and not sink._rebalancing
    # A batch fetched before p1 was given away completes after: p1 is not committed.
    sink._buffer.add({p0: _events(topic, 0, range(6, 10)), p1: _events(topic, 1, range(5, 6))})
    await sink.settle()


def test_commits_follow_durable_files_in_order_and_skip_partitions_given_away(
    make_settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(sink_batch_max_records=4, sink_batch_max_seconds=60.0)
    lake = Lake(settings.lake_dir)
    publisher = CatalogPublisher(settings.warehouse_path, lake, 60.0)
    sink = EventSink(
        settings, "unused:9092", lake, SinkMetrics.create(CollectorRegistry()), publisher
    )
    for table, schema in sink.tables.values():
        lake.ensure_table(table, schema)
    topic = settings.topic("enriched")
    consumer = FakeConsumer(lake, {TP(topic, 0), TP(topic, 1)})
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        sink._executor = executor
        asyncio.run(_drive(sink, consumer, topic))
    p0, p1 = TP(topic, 0), TP(topic, 1)
    assert consumer.commits == [
        ({p0: 2, p1: 2}, 4),  # batch 1, after its 4 rows are durable
        ({p0: 6}, 8),  # batch 2
        ({p1: 3}, 9),  # what was held at the rebalance
        ({p0: 10}, 14),  # p1's record is written (durable) but p1 is not ours to commit
    ]
