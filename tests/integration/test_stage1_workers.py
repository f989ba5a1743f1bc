"""Stage 1 with two real Faust workers in one group, one killed mid-stream: the sessions
and identities it produced equal the batch recomputation over the same events."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from collectors.http.normalize import Receipt, normalize
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.identity import DeviceIdentity, device_key
from pipeline.sessions import SessionRules, SessionState
from pipeline.settings import Settings
from pipeline.stream.enrich import process
from tests.conftest import autocap, child_env, wait_until

DEVICES = 1000
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _raw_events(seed: int = 5) -> list[dict[str, Any]]:
    """Per device, a few events in time order with gaps around the 30-minute rule, and an
    identify for some devices (two devices share one user now and then)."""
    rng = random.Random(seed)
    events = []
    for d in range(DEVICES):
        at = T0 + timedelta(seconds=rng.randrange(3600))
        for n in range(rng.randint(2, 7)):
            at += timedelta(minutes=rng.choice([1, 5, 20, 29, 31, 45, 90]))
            message: dict[str, Any] = {
                "type": "track",
                "event": "$pageview",
                "anonymousId": f"dev-{d:04d}",
                "messageId": f"m-{d:04d}-{n}",
                "timestamp": at.isoformat(),
            }
            if n == 2 and d % 3 == 0:
                message = {**message, "type": "identify", "userId": f"user-{d // 6}"}
            events.append(normalize(message, Receipt.at(at)))
    events.sort(key=lambda e: e["timestamp"])  # arrival in time order across devices
    return events


def _batch(events: list[dict[str, Any]], rules: SessionRules) -> dict[str, tuple[Any, Any]]:
    identities: dict[str, DeviceIdentity] = {}
    sessions: dict[str, SessionState | None] = {}
    expected = {}
    for record in sorted(events, key=lambda e: (e["timestamp"], e["event_id"])):
        key = device_key(record)
        identity, session, out = process(identities.get(key), sessions.get(key), record, rules)
        identities[key], sessions[key] = identity, session
        expected[record["event_id"]] = (out.enriched["session_id"], out.enriched["person_id"])
    return expected


@pytest.mark.timeout(240)
def test_two_workers_one_killed_match_the_batch_recomputation(
    broker: EmbeddedBroker, make_settings
) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(
        kafka_bootstrap=broker.bootstrap, partitions=4, session_timer_s=3600
    )
    ensure_topics(settings, broker.bootstrap)
    events = _raw_events()
    expected = _batch(events, SessionRules(timedelta(minutes=30), timedelta(hours=24)))

    env = child_env(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    workers = []
    for i, port in enumerate((settings.worker_metrics_port, settings.sink_metrics_port)):
        log = (settings.data_dir / f"worker{i}.log").open("w")
        workers.append(
            autocap(
                "worker",
                env={**env, "AUTOCAP_WORKER_METRICS_PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    consumer = KafkaConsumer(
        settings.topic("enriched"),
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=500,
    )
    seen: dict[str, set[tuple[Any, Any]]] = {}

    def drain_output() -> int:
        for message in consumer:
            record = orjson.loads(message.value)
            seen.setdefault(record["event_id"], set()).add(
                (record["session_id"], record["person_id"])
            )
        return len(seen)

    def send(records: list[dict[str, Any]]) -> None:
        for record in records:
            producer.send(
                settings.topic("raw"),
                key=record["anonymous_id"].encode(),
                value=orjson.dumps(record),
            )
        producer.flush()

    try:
        half = len(events) // 2
        send(events[:half])
        wait_until(
            lambda: drain_output() >= half // 4, 90, interval=0.5, what="both workers processing"
        )
        os.kill(workers[0].pid, signal.SIGKILL)  # mid-stream: half is not even sent yet
        send(events[half:])
        wait_until(
            lambda: drain_output() == len(events),
            150,
            interval=0.5,
            what="every event through the surviving worker",
        )
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        consumer.close()
        producer.close()

    # Replays after the kill may repeat an event; every copy must carry the batch answer.
    wrong = {eid: (got, expected[eid]) for eid, got in seen.items() if got != {expected[eid]}}
    assert not wrong, f"{len(wrong)} events differ from the batch, e.g. {next(iter(wrong.items()))}"
    assert len({s for s, _ in expected.values()}) > DEVICES  # sessions really were split
