"""Table recovery's end offsets on the real embedded broker: ListOffsets under-reports the end
of a partition whose last batch holds several records; the fetched high watermark does not."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from pipeline.broker import EmbeddedBroker
from pipeline.stream.end_offsets import fetched_end_offsets


async def _produce_batches(bootstrap: str, topic: str, sizes: list[int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=100)
    await producer.start()
    try:
        for size in sizes:  # each group lingers into one batch
            sent = [await producer.send(topic, b"x", partition=0) for _ in range(size)]
            await producer.flush()
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _reported(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


def test_end_offsets_count_every_record_of_the_last_batch(broker: EmbeddedBroker) -> None:
    topic = f"end-offsets-{uuid.uuid4().hex[:8]}"
    empty = f"{topic}-empty"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1), NewTopic(empty, 1, 1)])
    finally:
        admin.close()

    async def scenario() -> tuple[int, dict[TP, int]]:
        await _produce_batches(broker.bootstrap, topic, [5, 3])
        reported = await _reported(broker.bootstrap, topic)
        assert reported <= 8  # Tansu: 6 (the last batch's base offset + 1)
        fixed = await fetched_end_offsets(
            broker.bootstrap, {TP(topic, 0): reported, TP(empty, 0): 0}
        )
        return reported, fixed

    reported, fixed = asyncio.run(scenario())
    assert fixed == {TP(topic, 0): 8, TP(empty, 0): 0}, reported
