"""The load generator: a lean HTTP/1.1 keep-alive client, and the two ways of driving load.

The client runs on raw asyncio streams. It shares two cores with the collector and the
broker, so it does as little as it can per request: the request head is built once per body
length, the bodies are serialised before the clock starts, and the answer is read by its
``Content-Length`` without a general HTTP parser.

Both ways of driving load take any ``Send`` (an HTTP connection here; the bare producer
uses them too). ``closed_loop``: N senders each send their next item as soon as the last was
acknowledged, which finds the maximum rate. ``open_loop``: items fall due on a fixed
schedule whatever the system under test does, and latency runs from the due time, not from
when a sender was free, so a slow collector cannot hide its queueing delay (coordinated
omission).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

from bench.collector.stats import CpuMeter, PhaseResult, summarise

__all__ = ["Send", "Target", "closed_loop", "http_senders", "open_loop"]

T = TypeVar("T")

#: Sends one item and answers whether it was acknowledged.
Send = Callable[[T], Awaitable[bool]]


@dataclass(frozen=True)
class Target:
    """Where to post and with which write key."""

    host: str
    port: int
    write_key: str

    @cached_property
    def _head_prefix(self) -> bytes:
        auth = base64.b64encode(f"{self.write_key}:".encode()).decode()
        return (
            f"POST /v1/batch HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
            "Content-Length: "
        ).encode()

    def request_head(self, body_length: int) -> bytes:
        """The request line and headers of ``POST /v1/batch`` for a body of that length."""
        return self._head_prefix + b"%d\r\n\r\n" % body_length


class _Connection:
    """One keep-alive connection to the collector, reopened if the server closed it idle."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        """Open (or reopen) the TCP connection."""
        await self.close()
        self._reader, self._writer = await asyncio.open_connection(
            self._target.host, self._target.port
        )

    async def post_ok(self, body: bytes) -> bool:
        """Post one batch; whether the collector answered 200 (it does once Kafka acked)."""
        if self._reader is None or self._writer is None or self._reader.at_eof():
            await self.connect()  # uvicorn closes connections idle for 5 s
            assert self._reader is not None and self._writer is not None
        self._writer.writelines((self._target.request_head(len(body)), body))
        head = await self._reader.readuntil(b"\r\n\r\n")
        await self._reader.readexactly(_content_length(head))
        return head[9:12] == b"200"

    async def close(self) -> None:
        """Close the connection if it is open."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


def _content_length(head: bytes) -> int:
    start = head.lower().find(b"\r\ncontent-length:")
    if start < 0:
        raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
    end = head.find(b"\r\n", start + 2)
    return int(head[start + 17 : end])


@dataclass
class _Tally:
    """Latencies and failures, appended to by every worker of a phase."""

    latencies_s: list[float] = field(default_factory=list)
    items: int = 0
    errors: int = 0

    def record(self, ok: bool, latency_s: float) -> None:
        if ok:
            self.items += 1
            self.latencies_s.append(latency_s)
        else:
            self.errors += 1

    def result(self, events_per_item: int, seconds: float, cpu: CpuMeter) -> PhaseResult:
        events = self.items * events_per_item
        return summarise(events, seconds, self.latencies_s, self.errors, cpu.shares())


@contextlib.asynccontextmanager
async def http_senders(target: Target, count: int) -> AsyncIterator[list[Send[bytes]]]:
    """``count`` keep-alive connections to the collector, each as a ``Send`` of one body."""
    connections = [_Connection(target) for _ in range(count)]
    try:
        for connection in connections:
            await connection.connect()
        yield [c.post_ok for c in connections]
    finally:
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)


async def closed_loop(
    senders: Sequence[Send[T]], items: Iterable[T], events_per_item: int, cpu: CpuMeter
) -> PhaseResult:
    """Send every item as fast as the senders allow, each sender one item at a time."""
    tally = _Tally()
    pending: Iterator[T] = iter(items)

    async def work(send: Send[T]) -> None:
        for item in pending:  # shared iterator: each sender takes the next item
            started = time.perf_counter()
            ok = await send(item)
            tally.record(ok, time.perf_counter() - started)

    cpu.start()
    started = time.perf_counter()
    await asyncio.gather(*(work(send) for send in senders))
    return tally.result(events_per_item, time.perf_counter() - started, cpu)


async def open_loop(
    senders: Sequence[Send[T]],
    items: Sequence[T],
    items_per_s: float,
    events_per_item: int,
    cpu: CpuMeter,
) -> PhaseResult:
    """Item ``i`` is due at ``start + i / items_per_s``; latency counts from that due time.

    Due items wait in a queue for a free sender, and that wait is part of their latency.
    """
    tally = _Tally()
    due_items: asyncio.Queue[tuple[float, T] | None] = asyncio.Queue()

    async def schedule(start: float) -> None:
        for index, item in enumerate(items):
            due = start + index / items_per_s
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due_items.put_nowait((due, item))
        for _ in senders:
            due_items.put_nowait(None)

    async def work(send: Send[T]) -> None:
        while (entry := await due_items.get()) is not None:
            due, item = entry
            ok = await send(item)
            tally.record(ok, time.perf_counter() - due)

    cpu.start()
    start = time.perf_counter() + 0.01
    await asyncio.gather(schedule(start), *(work(send) for send in senders))
    return tally.result(events_per_item, time.perf_counter() - start, cpu)
