"""Where the collector's records go: a Protocol, and its Kafka implementation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

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

    def is_ready(self) -> bool:
        """Whether a send is expected to succeed now."""


class KafkaEventProducer:
    """aiokafka producer with ``acks=all`` (and idempotence where the broker supports it)."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = settings.kafka_connect_timeout_s
        self._idempotence = settings.kafka_idempotence
        self._producer: AIOKafkaProducer | None = None
        self._ready = False

    async def start(self) -> None:
        """Connect to Kafka within the configured timeout."""
        # aiokafka binds to the running loop, so the client is created here, not in __init__.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id="autocap-collector",
            acks="all",
            enable_idempotence=self._idempotence,
            linger_ms=1,
            request_timeout_ms=int(self._timeout_s * 1000),
        )
        try:
            await asyncio.wait_for(self._producer.start(), self._timeout_s)
        except (TimeoutError, KafkaError, OSError) as exc:
            raise BrokerUnavailable(
                f"collector cannot reach Kafka at {self._bootstrap} ({type(exc).__name__})"
            ) from exc
        self._ready = True

    async def stop(self) -> None:
        """Flush pending sends and close."""
        self._ready = False
        if self._producer is not None:
            await self._producer.stop()

    async def send_all(self, topic: str, records: Sequence[Record]) -> None:
        """Send every record and wait for all acknowledgements."""
        if self._producer is None:
            raise BrokerUnavailable("the collector's Kafka producer is not started")
        try:
            futures = [await self._producer.send(topic, value, key=key) for key, value in records]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            self._ready = False
            raise BrokerUnavailable(f"Kafka did not acknowledge ({type(exc).__name__})") from exc
        self._ready = True

    def is_ready(self) -> bool:
        """True while the last send (or the start) succeeded."""
        return self._ready
