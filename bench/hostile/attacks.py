"""Hostile clients against a running collector: gzip bombs, slow-loris, floods.

Shared by ``tests/integration/test_hostile_input.py`` (the functional guarantees, with
generous bounds) and ``python -m bench.hostile`` (the figures, measured side by side).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import socket
import statistics
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = [
    "Probe",
    "gzip_bomb",
    "gzip_padded",
    "p99",
    "read_topic",
    "slow_loris",
    "track",
]

_GIB = 1 << 30


def track(event_id: str | None = None, **extra: object) -> dict[str, object]:
    """One valid track message with its own messageId."""
    return {
        "type": "track",
        "event": "Hostile Probe",
        "anonymousId": "hostile-1",
        "messageId": event_id or f"h-{uuid.uuid4().hex}",
        **extra,
    }


@functools.cache
def gzip_bomb(inflated: int = _GIB) -> bytes:
    """gzip of ``inflated`` zero bytes (1 GiB: about 1 MB), compressed chunk by chunk."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [packer.compress(chunk) for _ in range(inflated // len(chunk))]
    parts.append(packer.flush())
    return b"".join(parts)


def gzip_padded(payload: bytes, wire_size: int) -> bytes:
    """A valid gzip of ``payload`` exactly ``wire_size`` bytes long.

    The gzip header's comment field (FCOMMENT) takes the padding: it changes the size on
    the wire and nothing of what inflates.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: we write the framing
    deflated = packer.compress(payload) + packer.flush()
    trailer = (zlib.crc32(payload) & 0xFFFFFFFF).to_bytes(4, "little") + (
        len(payload) & 0xFFFFFFFF
    ).to_bytes(4, "little")
    header = b"\x1f\x8b\x08\x10" + bytes(4) + b"\x00\xff"  # FCOMMENT set, no mtime, OS unknown
    pad = wire_size - len(header) - len(deflated) - len(trailer) - 1  # 1: comment's NUL
    if pad < 0:
        raise ValueError(f"{len(payload)} bytes do not deflate into {wire_size}")
    body = header + b"c" * pad + b"\x00" + deflated + trailer
    assert gzip.decompress(body) == payload and len(body) == wire_size
    return body


def p99(latencies: list[float]) -> float:
    """The 99th percentile of ``latencies`` (seconds)."""
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]


@dataclass
class Probe:
    """Valid traffic at a steady ``rate`` (requests/s, one event each) on its own thread."""

    url: str
    write_key: str
    rate: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    accepted_ids: list[str] = field(default_factory=list)
    events_per_request: int = 1

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        due = time.monotonic()
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                batch = [track() for _ in range(self.events_per_request)]
                started = time.monotonic()
                try:
                    resp = client.post(self.url, json={"batch": batch}, auth=(self.write_key, ""))
                    status = resp.status_code
                except httpx.HTTPError:
                    status = 0
                self.latencies.append(time.monotonic() - started)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.accepted_ids.extend(str(m["messageId"]) for m in batch)
                due += 1 / self.rate
                self._stop.wait(max(0.0, due - time.monotonic()))

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@dataclass
class LorisResult:
    """How long the server took to close each slow connection (None: still open)."""

    closed_after: list[float | None]

    @property
    def still_open(self) -> int:
        """Connections the server never closed."""
        return sum(t is None for t in self.closed_after)

    @property
    def slowest_close(self) -> float:
        """Seconds until the last closed connection was closed."""
        return max(t for t in self.closed_after if t is not None)


def slow_loris(host: str, port: int, connections: int, wait_s: float) -> LorisResult:
    """Open ``connections`` sockets that send a partial request head and then drip one
    header byte every 0.2 s (half of them) or nothing (the other half); report when the
    server closed each, waiting at most ``wait_s``."""
    socks, opened = [], []
    for _ in range(connections):
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: collector\r\nX-Slow: ")
        sock.setblocking(False)
        socks.append(sock)
        opened.append(time.monotonic())
    closed: list[float | None] = [None] * connections
    deadline = time.monotonic() + wait_s
    next_drip = time.monotonic()
    while time.monotonic() < deadline and any(c is None for c in closed):
        drip = time.monotonic() >= next_drip
        if drip:
            next_drip += 0.2
        for i, sock in enumerate(socks):
            if closed[i] is not None:
                continue
            try:
                if drip and i % 2 == 0:
                    sock.send(b"a")
                if sock.recv(4096) == b"":
                    closed[i] = time.monotonic() - opened[i]
            except BlockingIOError:
                pass
            except OSError:  # reset, or a send on a connection the server closed
                closed[i] = time.monotonic() - opened[i]
        time.sleep(0.02)
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()
    return LorisResult(closed)


def read_topic(bootstrap: str, topic: str, until_id: str, timeout_s: float = 30.0) -> list[dict]:
    """Every record on ``topic`` (JSON), read from the start until one whose event_id (or
    dead-letter payload) names ``until_id``, or ``timeout_s``."""
    return asyncio.run(_read_topic(bootstrap, topic, until_id, timeout_s))


async def _read_topic(bootstrap: str, topic: str, until_id: str, timeout_s: float) -> list[dict]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[dict] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=300)
            for batch in fetched.values():
                records += [orjson.loads(r.value) for r in batch if r.value is not None]
            if any(until_id in orjson.dumps(r).decode() for r in records):
                break
        return records
    finally:
        await consumer.stop()
