"""Where the collector's records go: a Protocol, and its Kafka implementation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from pipeline.errors import BrokerUnavailable
from pipeline.settings import Settings

__all__ = ["EventProducer", "KafkaEventProducer", "Record"]

#: (key, value) pairs; the key picks the partition.
Record = tuple[bytes | None, bytes]


class EventProducer(Protocol):
    """Sends records and returns only once the destination acknowledged every one."""

    async def start(self) -> None:
        """Connect; raise ``BrokerUnavailable`` if the destination cannot be reached."""

    async def stop(self) -> None:
        """Flush and disconnect."""

    async def send_all(self, topic: str, records: Sequence[Record]) -> None:
        """Deliver ``records`` to ``topic``; raise ``BrokerUnavailable`` if not acknowledged."""


class KafkaEventProducer:
    """aiokafka producer with ``acks=all`` (and idempotence where the broker supports it)."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = settings.kafka_connect_timeout_s
        self._idempotence = settings.kafka_idempotence
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()
        # Requests enqueue one at a time (asyncio.Lock is FIFO), so a partition whose queue
        # is full cannot let a later request's batch overtake an earlier one's.
        self._enqueue: asyncio.Lock | None = None

    async def start(self) -> None:
        """Connect to Kafka within the configured timeout."""
        # aiokafka binds to the running loop, so the client is created here, not in __init__.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id="autocap-collector",
            acks="all",
            enable_idempotence=self._idempotence,
            linger_ms=1,
            # Room for a whole request's records of one partition in one batch.
            max_batch_size=1024 * 1024,
            request_timeout_ms=int(self._timeout_s * 1000),
        )
        try:
            await asyncio.wait_for(self._producer.start(), self._timeout_s)
        except (TimeoutError, KafkaError, OSError) as exc:
            # A half-started client keeps connections and tasks: close it before retrying.
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None
            raise BrokerUnavailable(
                f"collector cannot reach Kafka at {self._bootstrap} ({type(exc).__name__})"
            ) from exc

    async def stop(self) -> None:
        """Flush pending sends and close."""
        if self._producer is not None:
            await self._producer.stop()

    async def send_all(self, topic: str, records: Sequence[Record]) -> None:
        """Send every record and wait for all acknowledgements.

        Records are grouped per partition (Kafka's murmur2 key hash, as every client
        computes it) into one record batch each, instead of one ``send()`` per record:
        the per-record overhead was most of the collector's cost.
        """
        if self._producer is None:
            raise BrokerUnavailable("the collector's Kafka producer is not started")
        producer = self._producer
        if self._enqueue is None:
            self._enqueue = asyncio.Lock()
        try:
            async with self._enqueue:
                futures = await self._enqueue_batches(producer, topic, records)
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge ({type(exc).__name__})") from exc

    async def _enqueue_batches(
        self, producer: AIOKafkaProducer, topic: str, records: Sequence[Record]
    ) -> list[asyncio.Future[object]]:
        """Queue ``records`` in the producer, one batch per partition; the futures resolve
        once Kafka acknowledges."""
        partitions = sorted(await producer.partitions_for(topic))
        by_partition: dict[int, list[Record]] = {}
        seen: dict[bytes | None, int] = {}  # a request's events mostly share one key
        for record in records:
            key = record[0]
            partition = seen.get(key) if key is not None else None
            if partition is None:
                partition = seen[key] = self._partitioner(key, partitions, partitions)
            by_partition.setdefault(partition, []).append(record)
        futures = []
        for partition, group in by_partition.items():
            batch = producer.create_batch()
            for key, value in group:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures
