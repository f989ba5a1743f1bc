"""Each role as a real process against the real embedded broker."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import orjson
import psutil
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from pipeline.broker import EmbeddedBroker
from pipeline.cluster import TOPICS, ensure_topics
from pipeline.processes import free_port
from pipeline.settings import Settings
from tests.conftest import WRITE_KEY, autocap, child_env, wait_until


def test_autocap_broker_serves_kafka_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = autocap(
        "broker",
        "--port",
        str(port),
        env=child_env(Settings(data_dir=tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    assert f"listening on 127.0.0.1:{port}" in banner
    tansu = [p for p in psutil.Process(proc.pid).children(recursive=True)]
    assert tansu, "the Tansu process should be a child of `autocap broker`"
    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
    assert isinstance(admin.list_topics(), list)
    admin.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tansu)


def test_topics_are_created_with_partitions_idempotently(
    broker: EmbeddedBroker, make_settings
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(partitions=3)
    created = ensure_topics(settings, broker.bootstrap)
    assert sorted(created) == sorted(settings.topic(t) for t in TOPICS)
    assert ensure_topics(settings, broker.bootstrap) == []  # second run: nothing to do
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    described = admin.describe_topics([settings.topic("raw")])
    admin.close()
    assert len(described[0]["partitions"]) == 3


@pytest.fixture
def roles(broker: EmbeddedBroker, make_settings) -> Iterator[tuple[Settings, dict]]:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(kafka_bootstrap=broker.bootstrap)
    settings.data_dir.mkdir(parents=True)
    definitions = settings.data_dir / "definitions.yaml"
    definitions.write_text("events:\n  - name: Signup\n    match: {event: Signed Up}\n")
    settings = settings.with_overrides(definitions_path=definitions, max_devices_per_person=1)
    env = child_env(settings)
    procs = {}
    for role in ("sink", "worker", "collector"):
        log = (settings.data_dir / f"{role}.log").open("w")
        procs[role] = autocap(role, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield settings, procs
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{name} did not stop within 20 s of SIGTERM")


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_event_flows_collector_to_warehouse(roles: tuple[Settings, dict]) -> None:
    settings, _ = roles
    base = f"http://127.0.0.1:{settings.collector_port}"
    wait_until(lambda: _ready(base + "/readyz"), 30, what="collector ready")
    body = {
        "batch": [
            {
                "type": "track",
                "event": "Signed Up",
                "anonymousId": "anon-42",
                "messageId": "evt-1",
                "properties": {"plan": "pro"},
                "context": {"page": {"path": "/signup"}},
            },
            {
                "type": "identify",
                "anonymousId": "anon-42",
                "userId": "user-7",
                "messageId": "evt-2",
                "traits": {"email": "x@acme.io"},
            },
        ]
    }
    resp = httpx.post(base + "/v1/batch", json=body, auth=(WRITE_KEY, ""), timeout=10)
    assert resp.status_code == 200, resp.text

    def rows() -> list[tuple]:
        if not settings.warehouse_path.exists():
            return []
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            return con.execute(
                "SELECT event_id, type, event, person_id, "
                "properties->>'plan', context->'page'->>'path' "
                "FROM events ORDER BY event_id"
            ).fetchall()
        finally:
            con.close()

    found = wait_until(lambda: len(rows()) == 2 and rows(), 45, what="events in the warehouse")
    # The anonymous event before the identify belongs to the identified user, retroactively.
    assert found == [
        ("evt-1", "track", "Signed Up", "u:user-7", "pro", "/signup"),
        ("evt-2", "identify", None, "u:user-7", None, None),
    ]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    ledger = con.execute("SELECT kind, from_person, to_person, event_id FROM identities").fetchall()
    sessions = con.execute("SELECT DISTINCT session_id FROM events").fetchall()
    defined = con.execute("SELECT name, event_id, person_id FROM defined_events").fetchall()
    con.close()
    assert defined == [("Signup", "evt-1", "u:user-7")]

    assert ledger == [("link", "a:anon-42", "u:user-7", "evt-2")]
    assert len(sessions) == 1 and sessions[0][0] is not None
    # The same event sent again (a client retry) never shows twice.
    httpx.post(base + "/v1/batch", json=body, auth=(WRITE_KEY, ""), timeout=10)
    time.sleep(3)
    assert len(rows()) == 2
    metrics = httpx.get(f"http://127.0.0.1:{settings.sink_metrics_port}/metrics").text
    assert "autocap_sink_rows_written_total" in metrics
    access = [
        orjson.loads(line)
        for line in (settings.data_dir / "collector.log").read_text().splitlines()
        if line.startswith('{"route"')
    ]
    assert access and access[0]["route"] == "batch" and access[0]["status"] == 200
    worker_metrics = httpx.get(f"http://127.0.0.1:{settings.worker_metrics_port}/metrics").text
    assert 'autocap_worker_events_processed_total{agent="stage1"}' in worker_metrics

    # A second device identifies as the same user: over the limit of 1, the person is flagged.
    second = {
        "type": "identify",
        "anonymousId": "anon-43",
        "userId": "user-7",
        "messageId": "evt-3",
    }
    assert (
        httpx.post(
            base + "/v1/batch", json={"batch": [second]}, auth=(WRITE_KEY, ""), timeout=10
        ).status_code
        == 200
    )

    def flags() -> list[tuple]:
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            return con.execute(
                "SELECT to_person, devices FROM identities WHERE kind = 'many_devices'"
            ).fetchall()
        finally:
            con.close()

    assert wait_until(flags, 30, what="the many-devices flag") == [("u:user-7", 2)]


def test_undecodable_raw_records_are_dead_lettered(
    roles: tuple[Settings, dict], broker: EmbeddedBroker
) -> None:
    settings, _ = roles
    wait_until(lambda: _ready(f"http://127.0.0.1:{settings.collector_port}/readyz"), 30)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send(settings.topic("raw"), key=b"k", value=b"{not json").get(10)
    producer.close()
    consumer = KafkaConsumer(
        settings.topic("dead_letter"),
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    deadline = time.monotonic() + 45
    records = []
    while not records and time.monotonic() < deadline:
        records = [orjson.loads(m.value) for m in consumer]
    consumer.close()
    assert records, "the bad record never reached the dead-letter topic"
    assert records[0]["stage"] == "stage1" and records[0]["reason"] == "json"
    assert records[0]["payload"] == "{not json"
