"""Getting accepted events to Kafka, or to the disk spool when Kafka cannot take them.

A request's records go straight to Kafka when the spool is empty and Kafka acknowledges
within ``produce_timeout_s``. Otherwise they are appended to the spool (fsynced) and the
request still gets its 200. While anything is spooled, new records queue behind it, so the
spool drains in order once Kafka is back. Only a full spool makes the collector answer 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from collectors.http.producer import EventProducer
from collectors.http.spool import DiskSpool, Frame
from pipeline.errors import BrokerUnavailable
from pipeline.metrics import CollectorMetrics

__all__ = ["Delivery"]

log = logging.getLogger(__name__)

_DRAIN_CHUNK = 2000  # records sent per acknowledged round trip while draining


class Delivery:
    """Owns the producer and the spool; ``deliver`` is what request handlers call."""

    def __init__(
        self, producer: EventProducer, spool: DiskSpool, timeout_s: float, metrics: CollectorMetrics
    ) -> None:
        self.producer = producer
        self.spool = spool
        self.timeout_s = timeout_s
        self.metrics = metrics
        self._connected = False
        # Created in the serving loop (asyncio primitives bind to the loop that first uses
        # them): the lock orders spool appends against draining, the event wakes the drainer.
        self._lock: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._drainer: asyncio.Task[None] | None = None
        metrics.spool_bytes.set(spool.size_bytes)

    def _sync(self) -> tuple[asyncio.Lock, asyncio.Event]:
        if self._lock is None or self._wake is None:
            self._lock, self._wake = asyncio.Lock(), asyncio.Event()
        return self._lock, self._wake

    async def start(self) -> None:
        """Connect (a failure only means spooling) and start draining in the background."""
        self._sync()
        await self._connect()
        self._drainer = asyncio.create_task(self._drain_forever(), name="spool-drainer")

    async def stop(self) -> None:
        """Stop draining (what is spooled stays on disk for the next start) and disconnect."""
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        await self.producer.stop()

    def kafka_takes_events(self) -> bool:
        """Events go straight to Kafka: connected, and nothing waits in the spool."""
        return self._connected and self.spool.is_empty()

    def is_ready(self) -> bool:
        """Kafka takes events, or the spool still has room for them."""
        return self.kafka_takes_events() or self.spool.has_room()

    async def _connect(self) -> bool:
        if not self._connected:
            try:
                await self.producer.start()
                self._connected = True
            except BrokerUnavailable as exc:
                log.warning("Kafka unreachable, spooling to %s: %s", self.spool.directory, exc)
        return self._connected

    async def _send(self, frame: Frame) -> None:
        by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
        for topic, key, value in frame:
            by_topic.setdefault(topic, []).append((key, value))
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self._send_topics(by_topic), self.timeout_s)
        except (BrokerUnavailable, TimeoutError) as exc:
            self.metrics.producer_errors.labels(type(exc).__name__).inc()
            raise BrokerUnavailable(
                f"Kafka did not acknowledge within {self.timeout_s:g}s"
            ) from exc
        self.metrics.produce_seconds.observe(time.perf_counter() - started)

    async def _send_topics(self, by_topic: dict[str, list[tuple[bytes | None, bytes]]]) -> None:
        await asyncio.gather(*(self.producer.send_all(t, r) for t, r in by_topic.items()))

    async def deliver(self, frame: Sequence[tuple[str, bytes | None, bytes]]) -> str:
        """Make ``frame`` durable: ``"kafka"`` or ``"spool"``; ``SpoolFull`` if neither can."""
        frame = list(frame)
        if not frame:
            return "kafka"
        if self._connected and self.spool.is_empty():
            try:
                await self._send(frame)
                return "kafka"
            except BrokerUnavailable as exc:
                log.warning("%s; spooling", exc)
        lock, wake = self._sync()
        async with lock:  # appends in arrival order; DiskSpool's own lock guards the file
            await asyncio.to_thread(self.spool.append, frame)
        self.metrics.events_spooled.inc(len(frame))
        self.metrics.spool_bytes.set(self.spool.size_bytes)
        wake.set()
        return "spool"

    async def _drain_forever(self) -> None:
        backoff = 0.2
        _, wake = self._sync()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=1.0)
            wake.clear()
            if self.spool.is_empty() or not await self._connect():
                continue
            try:
                await self._drain_once()
                backoff = 0.2
            except BrokerUnavailable as exc:
                log.warning("spool drain paused: %s", exc)
            except Exception:  # never let the drainer die silently: the spool would fill
                log.exception("spool drain failed; retrying")
            else:
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
            wake.set()

    async def _drain_once(self) -> None:
        """Send every spooled segment, oldest first, deleting each once acknowledged."""
        lock, _ = self._sync()
        while True:
            async with lock:  # never read a segment while a frame is being appended
                oldest = self.spool.oldest()
            if oldest is None:
                return
            segment, frames = oldest
            # Many frames per round trip: draining must outpace appends (one fsync each).
            chunk: Frame = []
            for frame in frames:
                chunk += frame
                if len(chunk) >= _DRAIN_CHUNK:
                    await self._send(chunk)
                    self.metrics.events_drained.inc(len(chunk))
                    chunk = []
            if chunk:
                await self._send(chunk)
                self.metrics.events_drained.inc(len(chunk))
            async with lock:
                self.spool.remove(segment)
            self.metrics.spool_bytes.set(self.spool.size_bytes)
            log.info("drained spool segment %s (%d frames)", segment.name, len(frames))
