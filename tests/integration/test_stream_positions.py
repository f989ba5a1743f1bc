"""The rewind on the real broker: a group member fetches records of a partition nobody has
committed (its position moves past them, as when Faust drops what it fetched during a
rebalance), then seeks to committed offsets the way Faust's recovery does. aiokafka alone
leaves the position where it was, so those records would never be processed; through
``rewind_uncommitted_partitions`` the position goes back to the start, and a partition with
a commit goes back to its commit."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from pipeline.broker import EmbeddedBroker
from pipeline.stream.positions import rewind_uncommitted_partitions

RECORDS = 40


def _thread_over(consumer: AIOKafkaConsumer) -> Any:
    """A Faust consumer thread (the real class, its real ``seek_to_committed``) whose calls
    run on this loop against ``consumer``, without starting a Faust app."""
    thread = object.__new__(AIOKafkaConsumerThread)
    thread.app = SimpleNamespace(  # type: ignore[attr-defined]
        conf=SimpleNamespace(consumer_auto_offset_reset="earliest"),
        tables=SimpleNamespace(changelog_topics=set()),
    )
    thread._consumer = consumer

    async def call_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    thread.call_thread = call_thread  # type: ignore[method-assign]
    return thread


async def _scenario(bootstrap: str, topic: str, rewound: bool) -> dict[int, int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    for n in range(RECORDS):
        await producer.send_and_wait(topic, b"%d" % n, partition=n % 2)
    await producer.stop()
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        fetched = 0
        while fetched < RECORDS:  # fetched and dropped: both positions move to the end
            batches = await consumer.getmany(timeout_ms=1000)
            fetched += sum(len(records) for records in batches.values())
        await consumer.commit({tp1: OffsetAndMetadata(5, "")})  # only partition 1 has one
        if rewound:
            rewind_uncommitted_partitions()
        await _thread_over(consumer).seek_to_committed()
        return {tp.partition: await consumer.position(tp) for tp in (tp0, tp1)}
    finally:
        await consumer.stop()


def test_seek_to_committed_rewinds_a_partition_nobody_committed(broker: EmbeddedBroker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    topics = [f"rewind-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1) for t in topics])
    admin.close()
    original = AIOKafkaConsumerThread.seek_to_committed
    try:
        # aiokafka alone: the uncommitted partition stays past the records it never gave on.
        assert asyncio.run(_scenario(broker.bootstrap, topics[0], rewound=False)) == {0: 20, 1: 5}
        assert asyncio.run(_scenario(broker.bootstrap, topics[1], rewound=True)) == {0: 0, 1: 5}
    finally:
        AIOKafkaConsumerThread.seek_to_committed = original  # type: ignore[method-assign]
