"""Kafka goes away mid-stream: every event answered 200 reaches Kafka once it is back."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from kafka import KafkaConsumer

from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.processes import free_port
from pipeline.settings import Settings
from tests.conftest import WRITE_KEY, autocap, child_env, wait_until
from tests.proxy import TcpProxy


class Sender:
    """Posts batches in a loop and keeps a ledger of every event_id answered 200."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: list[str] = []
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                ids = [f"out-{n}-{i}" for i in range(5)]
                n += 1
                batch = [
                    {"type": "track", "event": "Tick", "anonymousId": f"a{n % 7}", "messageId": i}
                    for i in ids
                ]
                try:
                    resp = client.post(self.url, json={"batch": batch}, auth=(WRITE_KEY, ""))
                except httpx.HTTPError:
                    continue
                self.statuses[resp.status_code] = self.statuses.get(resp.status_code, 0) + 1
                if resp.status_code == 200:
                    self.acked.extend(ids)
                time.sleep(0.02)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, TcpProxy]]:
    """A broker reachable only through a proxy, so the line to it can be cut."""
    proxy_port = free_port()
    broker = EmbeddedBroker(
        port=free_port(), log_path=tmp_path / "tansu.log", advertised_port=proxy_port
    )
    proxy = TcpProxy(proxy_port, ("127.0.0.1", broker.port))
    proxy.restore()
    broker.start()
    yield broker, proxy
    proxy.cut()
    broker.stop()


def _raw_ids(settings: Settings, bootstrap: str) -> list[str]:
    consumer = KafkaConsumer(
        settings.topic("raw"),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=2000,
    )
    ids = [orjson.loads(m.value)["event_id"] for m in consumer]
    consumer.close()
    return ids


@pytest.mark.parametrize("outage", ["refused", "frozen"])
def test_every_acknowledged_event_lands_after_an_outage(
    own_broker: tuple[EmbeddedBroker, TcpProxy],
    make_settings,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    outage: str,
) -> None:
    broker, proxy = own_broker
    bootstrap = f"127.0.0.1:{proxy.listen_port}"
    settings: Settings = make_settings(
        kafka_bootstrap=bootstrap, produce_timeout_s=1.0, kafka_connect_timeout_s=3.0
    )
    ensure_topics(settings, bootstrap)
    log = (tmp_path / "collector.log").open("w")
    collector = autocap("collector", env=child_env(settings), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{settings.collector_port}"
    try:
        wait_until(lambda: _get(base + "/readyz") == 200, 30, what="collector ready")
        sender = Sender(base + "/v1/batch")
        sender.thread.start()
        wait_until(lambda: len(sender.acked) >= 50, 20, what="traffic before the outage")

        tansu_pid = broker.pid
        assert tansu_pid is not None
        if outage == "refused":
            proxy.cut()  # Kafka unreachable: connections refused and reset
        else:
            os.kill(tansu_pid, signal.SIGSTOP)  # broker hangs: sends time out
        before = len(sender.acked)
        wait_until(
            lambda: len(sender.acked) >= before + 50,
            30,
            what="events acknowledged from the spool during the outage",
        )
        assert list(settings.spool_dir.glob("*.spool")), "nothing was spooled"
        assert _get(base + "/readyz") == 503  # accepting into the spool, Kafka is not taking

        if outage == "refused":
            proxy.restore()
        else:
            os.kill(tansu_pid, signal.SIGCONT)
        time.sleep(2)
        sender.stop.set()
        sender.thread.join(30)
        wait_until(
            lambda: not list(settings.spool_dir.glob("*.spool")), 60, what="the spool to drain"
        )
        landed = set(_raw_ids(settings, bootstrap))
        missing = set(sender.acked) - landed
        assert not missing, f"{len(missing)} acknowledged events never reached Kafka"
        assert sender.statuses.get(200, 0) > 0 and set(sender.statuses) <= {200, 503}
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(20)


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_collector_restarted_during_an_outage_serves_from_its_spool(make_settings) -> None:  # type: ignore[no-untyped-def]
    """With events already spooled, the collector starts without Kafka (instead of failing
    fast) and keeps accepting events into the spool."""
    from collectors.http.spool import DiskSpool

    settings: Settings = make_settings(
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_connect_timeout_s=1.0,
        produce_timeout_s=0.5,
    )
    DiskSpool(settings.spool_dir, settings.spool_max_bytes).append(
        [(settings.topic("raw"), b"k", b'{"event_id": "before-restart"}')]
    )

    def spooled() -> int:
        return sum(p.stat().st_size for p in settings.spool_dir.glob("*.spool"))

    before = spooled()
    collector = autocap(
        "collector", env=child_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{settings.collector_port}"
    try:
        wait_until(lambda: _get(base + "/healthz") == 200, 30, what="collector up")
        assert _get(base + "/readyz") == 503  # serving from its spool: Kafka takes nothing
        resp = httpx.post(
            base + "/v1/batch",
            auth=(WRITE_KEY, ""),
            timeout=10,
            json={"batch": [{"type": "track", "event": "Tick", "anonymousId": "a1"}]},
        )
        assert resp.status_code == 200
        assert spooled() > before  # the new event went to the spool, behind the old one
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(20)
