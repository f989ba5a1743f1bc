"""The sink: stage 1's and 2's topics in batches → Arrow → an atomic Parquet file → commit.

Offsets are committed only after the file covering them is durable, so a crash replays
records instead of losing them; the replayed copies carry the same event_id and the
``events`` view keeps one. Records that do not fit their table go to the dead-letter topic
(durably, before their offsets are committed).

Pipelined: the event loop fetches (aiokafka) while a writer thread decodes and writes the
previous batch. One batch is in flight at most, and batches complete in order, so offsets
are committed strictly in order. On a rebalance the sink writes and commits what it holds
before giving its partitions up, and drops what it fetched meanwhile: the next owner (or
itself) reads it again from the committed offset.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from pipeline.deadletter import dead_letter_record
from pipeline.errors import BrokerUnavailable, UndecodableRecord
from pipeline.metrics import SinkMetrics
from pipeline.settings import Settings
from pipeline.timeutil import utc_now
from pipeline.warehouse.batches import Batch, BatchWriter, Buffer
from pipeline.warehouse.catalog import CatalogPublisher
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import TABLES

__all__ = ["FETCH_CONFIG", "EventSink"]

log = logging.getLogger(__name__)

#: A commit that takes longer is given up (the rows are durable; a replay collapses).
_COMMIT_TIMEOUT_S = 5.0
#: Leaving (SIGTERM): the broker may be gone too, and the process must exit within 10 s.
_CLOSING_TIMEOUT_S = 1.0
_POLL_MS = 100
#: Fetch settings shared with the benchmark's fetch-only floor.
FETCH_CONFIG: dict[str, Any] = {
    "max_partition_fetch_bytes": 4 * 1024 * 1024,
    "fetch_max_bytes": 32 * 1024 * 1024,
}


@dataclass
class _InFlight:
    batch: Batch
    done: asyncio.Future[list[UndecodableRecord]]
    started: float


class _SettleOnRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Write and commit what we hold before another member takes these partitions over.
        await self._sink.settle()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._sink.reassigned()


class EventSink:
    """Consumes stage 1's and 2's output topics and writes each to its lake table
    (``TABLES``)."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        lake: Lake,
        metrics: SinkMetrics,
        publisher: CatalogPublisher,
    ) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.lake = lake
        self.metrics = metrics
        self.publisher = publisher
        self.tables = {
            settings.topic(topic): (table, schema) for table, (topic, schema) in TABLES.items()
        }
        self._writer = BatchWriter(lake, publisher, metrics, self.tables)
        self._buffer = Buffer(settings.sink_batch_max_records, settings.sink_batch_max_seconds)
        self._inflight: _InFlight | None = None
        self._commit_timeout_s = _COMMIT_TIMEOUT_S
        self._rebalancing = False
        # Made in ``run``: aiokafka's clients and the lock belong to its event loop.
        self._consumer: Any = None
        self._producer: Any = None
        self._lock: asyncio.Lock | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def run(self, stop: threading.Event) -> None:
        """Fetch, batch and write until ``stop`` is set; then write what is left and leave."""
        for table, schema in self.tables.values():
            self.lake.ensure_table(table, schema)
            if removed := self.lake.clean_temporaries(table):
                log.warning(
                    "removed %d partial files left by a crash in %s",
                    removed,
                    self.lake.table_dir(table),
                )
        with concurrent.futures.ThreadPoolExecutor(1, "autocap-sink-writer") as executor:
            self._executor = executor
            asyncio.run(self._run(stop))

    async def _run(self, stop: threading.Event) -> None:
        session_ms = int(self.settings.consumer_session_timeout_s * 1000)
        self._lock = asyncio.Lock()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.settings.group_id("sink"),
            client_id="autocap-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 5),
            **FETCH_CONFIG,
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", client_id="autocap-sink-dlq"
        )
        self._consumer.subscribe(sorted(self.tables), listener=_SettleOnRebalance(self))
        try:
            await self._producer.start()
            await self._consumer.start()
            await self._loop(stop)
            # Leaving: Kafka gets a second at most; the rows are durable either way and a
            # replay of uncommitted ones collapses by event_id.
            self._commit_timeout_s = _CLOSING_TIMEOUT_S
            await self.settle()
            await self._in_writer(self.publisher.publish)
        finally:
            await self._close()

    async def _loop(self, stop: threading.Event) -> None:
        assert self._lock is not None
        while not stop.is_set():
            polled: Mapping[Any, Any] = await self._consumer.getmany(timeout_ms=_POLL_MS)
            if not self._rebalancing:  # else read again from the committed offset later
                self._buffer.add(polled)
            async with self._lock:
                await self._advance()

    async def _advance(self) -> None:
        """Complete the batch in flight if it is done; start the next one when due."""
        if self._inflight is not None and self._inflight.done.done():
            await self._complete()
        if self._rebalancing or not self._buffer.due():
            if self._inflight is None and not self._rebalancing:
                self.publisher.publish_if_due()  # new files, and a quiet topic
            return
        if self._inflight is not None:
            # Backpressure: one batch in flight. aiokafka keeps prefetching meanwhile.
            await self._complete()
        self._submit()

    def _submit(self) -> None:
        assert self._executor is not None
        batch = self._buffer.take()
        done = asyncio.get_running_loop().run_in_executor(self._executor, self._writer.write, batch)
        self._inflight = _InFlight(batch, done, time.perf_counter())

    async def _complete(self) -> None:
        """Wait for the batch in flight, dead-letter its bad records, commit its offsets."""
        assert self._inflight is not None
        inflight, self._inflight = self._inflight, None
        rejected = await inflight.done  # a failed write propagates: nothing is committed
        await self._dead_letter(rejected)
        await self._commit(inflight.batch.offsets)
        self.metrics.batch_seconds.observe(time.perf_counter() - inflight.started)

    async def settle(self) -> None:
        """Write and commit everything fetched so far (before a rebalance, and leaving)."""
        assert self._lock is not None
        async with self._lock:
            if self._inflight is not None:
                await self._complete()
            if len(self._buffer):
                self._submit()
                await self._complete()
            self._rebalancing = True

    def reassigned(self) -> None:
        """Partitions assigned: fetch positions restart at the committed offsets, so what
        was fetched since ``settle`` is dropped (it comes again)."""
        dropped = self._buffer.take().records
        if dropped:
            log.info("dropped %d records fetched during a rebalance; they are read again", dropped)
        self._rebalancing = False

    async def _dead_letter(self, rejected: list[UndecodableRecord]) -> None:
        if not rejected:
            return
        topic = self.settings.topic("dead_letter")
        sent = []
        for bad in rejected:
            self.metrics.records_dead_lettered.labels("undecodable").inc()
            record = dead_letter_record(
                stage="sink",
                reason="undecodable",
                field=None,
                message=f"{bad.table}: {bad.reason}",
                payload=bad.payload,
                received_at=utc_now(),
            )
            sent.append(await self._producer.send(topic, record))
        try:
            # Dead letters durable before their offsets commit.
            await asyncio.wait_for(asyncio.gather(*sent), self._commit_timeout_s)
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailable(
                f"the dead-letter topic {topic} did not take {len(sent)} records ({exc!r});"
                " the sink stops without committing so they are read again: check the broker"
            ) from exc

    async def _commit(self, offsets: dict[Any, int]) -> None:
        # A partition given away meanwhile is not ours to commit; its rows are durable and
        # the new owner's replay of them collapses by event_id.
        assigned = self._consumer.assignment()
        mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not mine:
            return
        try:
            await asyncio.wait_for(self._consumer.commit(mine), self._commit_timeout_s)
            self.metrics.last_commit_timestamp.set_to_current_time()
        except (KafkaError, TimeoutError) as exc:
            log.warning("offset commit failed (%r); the batch's records may replay", exc)

    async def _in_writer(self, work: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def _close(self) -> None:
        for client in (self._consumer, self._producer):
            try:
                await asyncio.wait_for(client.stop(), _CLOSING_TIMEOUT_S)
            except (KafkaError, TimeoutError) as exc:
                log.warning("closing %s: %r", type(client).__name__, exc)
