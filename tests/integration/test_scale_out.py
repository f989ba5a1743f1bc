"""Scale-out against one external Kafka: two collectors, two stage-1 workers and two sinks
as separate role processes (what docs/scaling.md describes), partitions > 1. Every event
posted to either collector is in the warehouse exactly once, and each device's events
agree on one person and on sessions, whichever worker handled them."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator

import duckdb
import httpx
import pytest

from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.processes import free_port
from pipeline.settings import Settings
from tests.conftest import WRITE_KEY, autocap, child_env, wait_until

DEVICES = 40
EVENTS_PER_DEVICE = 6


@pytest.fixture
def deployment(broker: EmbeddedBroker, make_settings) -> Iterator[tuple[Settings, list[int]]]:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(kafka_bootstrap=broker.bootstrap, partitions=4)
    ensure_topics(settings, broker.bootstrap)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[str]] = []

    def start(role: str, n: int, **env: str) -> None:
        log = (settings.data_dir / f"{role}{n}.log").open("w")
        procs.append(
            autocap(role, env=child_env(settings, **env), stdout=log, stderr=subprocess.STDOUT)
        )

    ports = [free_port(), free_port()]
    try:
        for n, port in enumerate(ports):
            # Each collector has a spool of its own (its own host, in production).
            start(
                "collector",
                n,
                AUTOCAP_COLLECTOR_PORT=str(port),
                AUTOCAP_DATA_DIR=str(settings.data_dir / f"collector{n}"),
            )
            start("worker", n, AUTOCAP_WORKER_METRICS_PORT=str(free_port()))
            # One compactor per lake is enough: the second sink only writes.
            start(
                "sink",
                n,
                AUTOCAP_SINK_METRICS_PORT=str(free_port()),
                AUTOCAP_COMPACT_INTERVAL_S="2" if n == 0 else "0",
            )
        yield settings, ports
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_of_each_role_count_every_event_once(
    deployment: tuple[Settings, list[int]],
) -> None:
    settings, ports = deployment
    for port in ports:
        wait_until(lambda p=port: _ready(p), 60, 0.2, "collectors ready")
    sent = 0
    for round_ in range(EVENTS_PER_DEVICE):
        for device in range(DEVICES):
            port = ports[(device + round_) % 2]  # a device's events go through both
            message = {
                "type": "identify" if round_ == 2 and device % 4 == 0 else "track",
                "event": "Scaled",
                "anonymousId": f"dev-{device}",
                "messageId": f"m-{device}-{round_}",
                "timestamp": f"2026-11-23T10:{round_:02d}:{device:02d}.000Z",
            }
            if message["type"] == "identify":
                message["userId"] = f"user-{device}"
            answer = httpx.post(
                f"http://127.0.0.1:{port}/v1/batch",
                json={"batch": [message]},
                auth=(WRITE_KEY, ""),
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            sent += 1

    def counts() -> tuple[int, int] | None:
        if not settings.warehouse_path.exists():
            return None
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            row = con.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM events WHERE event_id LIKE 'm-%'"
            ).fetchone()
        finally:
            con.close()
        assert row is not None
        return (int(row[0]), int(row[1])) if row[1] == sent else None

    assert wait_until(counts, 120, 0.5, "every event in the warehouse") == (sent, sent)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        per_device = con.execute(
            "SELECT anonymous_id, count(DISTINCT person_id), count(DISTINCT session_id)"
            " FROM events WHERE event_id LIKE 'm-%' GROUP BY 1"
        ).fetchall()
    finally:
        con.close()
    assert len(per_device) == DEVICES
    # Minutes apart, within the inactivity timeout: one session per device; and one person
    # (identified devices' anonymous history is re-attributed to the user).
    assert {(people, sessions) for _, people, sessions in per_device} == {(1, 1)}
