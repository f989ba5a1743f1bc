"""The sink killed with SIGKILL five times while 200k events flow, compaction running and
two analysts querying: every event is in ``events`` exactly once, and no analyst query
ever fails."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import orjson
import pyarrow.parquet as pq
from kafka import KafkaProducer

from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.settings import Settings
from tests.conftest import autocap, child_env, wait_until

EVENTS = 200_000
KILLS = 5


def _record(n: int) -> bytes:
    at = f"2026-11-23T10:{(n // 6000) % 60:02d}:{(n // 100) % 60:02d}.{n % 1000:03d}Z"
    return orjson.dumps(
        {
            "event_id": f"ev-{n:07d}",
            "type": "track",
            "event": "$click" if n % 3 else "$pageview",
            "anonymous_id": f"dev-{n % 5000}",
            "person_id": f"a:dev-{n % 5000}",
            "session_id": f"s-{n % 5000}",
            "timestamp": at,
            "received_at": at,
            "properties": {"n": n},
        }
    )


def _produce(settings: Settings, bootstrap: str, done: threading.Event) -> None:
    """200k records onto ``enriched`` at about 10k/s (so the kills land mid-flow)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    topic = settings.topic("enriched")
    started = time.monotonic()
    for n in range(EVENTS):
        producer.send(topic, key=f"a:dev-{n % 5000}".encode(), value=_record(n))
        if n % 1000 == 999:
            ahead = (n + 1) / 10_000 - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush()
    producer.close()
    done.set()


def _distinct_and_total(warehouse: Path) -> tuple[int, int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        row = con.execute("SELECT count(DISTINCT event_id), count(*) FROM events").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), int(row[1])


def test_sink_killed_five_times_events_exactly_once_and_analysts_never_fail(
    broker: EmbeddedBroker, make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(
        kafka_bootstrap=broker.bootstrap,
        partitions=4,
        sink_batch_max_records=2000,
        sink_batch_max_seconds=0.5,
        compact_interval_s=1.0,
        compact_grace_s=5.0,
    )
    ensure_topics(settings, broker.bootstrap)
    env = child_env(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = (settings.data_dir / "sink.log").open("a")

    def start_sink() -> subprocess.Popen[str]:
        return autocap("sink", env=env, stdout=log, stderr=subprocess.STDOUT)

    sink = start_sink()
    wait_until(settings.warehouse_path.exists, 30, what="the catalog")
    stopfile = tmp_path / "stop"
    analysts = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.analyst_loop",
                str(settings.warehouse_path),
                str(tmp_path / f"analyst{i}.json"),
                str(stopfile),
            ]
        )
        for i in range(2)
    ]
    done = threading.Event()
    producer = threading.Thread(target=_produce, args=(settings, broker.bootstrap, done))
    producer.start()
    rng = random.Random(7)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.5, 3.5))  # a random point of the 20 s flow
            sink.send_signal(signal.SIGKILL)
            sink.wait(10)
            sink = start_sink()
        producer.join(120)
        assert done.is_set(), "the producer did not finish"
        wait_until(
            lambda: _distinct_and_total(settings.warehouse_path)[0] == EVENTS,
            180,
            interval=1,
            what="every event in the warehouse",
        )
        time.sleep(3)  # a little longer: a late replayed batch would show up as a duplicate
    finally:
        stopfile.touch()
        for analyst in analysts:
            analyst.wait(30)
        sink.send_signal(signal.SIGTERM)
        sink.wait(30)

    assert _distinct_and_total(settings.warehouse_path) == (EVENTS, EVENTS)
    for i in range(2):
        report = orjson.loads((tmp_path / f"analyst{i}.json").read_bytes())
        assert report["errors"] == [], report["errors"]
        assert report["queries"] > 50
    # Compaction ran under all this: some file holds more than one sink batch.
    files = [p for p in (settings.data_dir / "lake" / "events").glob("*.parquet")]
    assert max(pq.ParquetFile(p).metadata.num_rows for p in files) > 2000
