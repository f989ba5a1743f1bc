"""autocap import and autocap verify against the real pipeline: embedded broker, a real Faust
worker and sink as subprocesses, real Parquet and DuckDB."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kafka import KafkaConsumer

from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.processes import free_port
from pipeline.settings import Settings
from tests.conftest import autocap, child_env, wait_until

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GAPS = (3, 40, 7, 31, 12, 90, 2)  # minutes: around the 30-minute rule


def _jsonl_messages() -> list[dict[str, Any]]:
    """30 devices, 7 events each, in time order; some identify; receivedAt recorded; every
    fifth message without messageId."""
    messages = []
    for d in range(30):
        at = T0 + timedelta(seconds=17 * d)
        for n, gap in enumerate(GAPS):
            at += timedelta(minutes=gap)
            message: dict[str, Any] = {
                "type": "track",
                "event": "$pageview",
                "anonymousId": f"jdev-{d:02d}",
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "receivedAt": (at + timedelta(seconds=1)).isoformat(),
                "context": {"page": {"url": f"https://shop.example/p{n}"}},
            }
            if (d * 7 + n) % 5:
                message["messageId"] = f"j-{d:02d}-{n}"
            if n == 4 and d % 3 == 0:
                message |= {"type": "identify", "userId": f"user-{d // 2}"}
            messages.append(message)
    return sorted(messages, key=lambda m: m["timestamp"])


def _write_jsonl(path: Path, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The valid messages, a duplicate of two of them, and three bad lines."""
    lines = [orjson.dumps(m) for m in messages]
    lines.insert(10, b"{not json")  # line 11
    lines.insert(20, orjson.dumps({"type": "track", "anonymousId": "x"}))  # line 21: no event
    lines.insert(30, orjson.dumps({"type": "page", "anonymousId": "undefined"}))  # line 31
    lines += [orjson.dumps(messages[0]), orjson.dumps(messages[50])]  # duplicates
    path.write_bytes(b"\n".join(lines) + b"\n")
    return {"lines": len(lines), "bad": {11: "json", 21: "required", 31: "junk_id"}}


def _write_parquet(path: Path) -> int:
    rows = []
    for d in range(8):
        at = T0 + timedelta(hours=1, seconds=13 * d)
        for n, gap in enumerate(GAPS):
            at += timedelta(minutes=gap)
            rows.append(
                {
                    "type": "track",
                    "event": "Viewed",
                    "message_id": f"p-{d}-{n}",
                    "anonymous_id": f"pdev-{d}",
                    "user_id": f"buyer-{d}" if n >= 5 else None,
                    "timestamp": at,
                    "properties": orjson.dumps({"n": n}).decode(),
                }
            )
    pq.write_table(pa.Table.from_pylist(rows), path)
    return len(rows)


@pytest.fixture
def pipeline(broker: EmbeddedBroker, make_settings) -> Iterator[Settings]:  # type: ignore[no-untyped-def]
    """A worker and a sink on the real broker; idle sessions summarised every second."""
    settings: Settings = make_settings(
        kafka_bootstrap=broker.bootstrap,
        session_timer_s=1.0,
        catalog_refresh_s=0.2,
        compact_interval_s=0,
    )
    ensure_topics(settings, broker.bootstrap)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = (settings.data_dir / "roles.log").open("w")
    roles = [
        autocap(role, env=child_env(settings), stdout=log, stderr=subprocess.STDOUT)
        for role in ("worker", "sink")
    ]
    try:
        yield settings
    finally:
        for role in roles:
            role.terminate()
        for role in roles:
            try:
                role.wait(20)
            except subprocess.TimeoutExpired:
                role.kill()


def _import(settings: Settings, *files: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "import", *map(str, files), "--output", "json"],
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = orjson.loads(done.stdout)
    return summary


def _scalar(settings: Settings, sql: str) -> Any:
    if not settings.warehouse_path.exists():
        return None
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        row = con.execute(sql).fetchone()
        return row[0] if row else None
    finally:
        con.close()


@pytest.mark.timeout(240)
def test_import_lands_once_reimport_adds_nothing_and_verify_agrees(
    pipeline: Settings, tmp_path: Path
) -> None:
    settings = pipeline
    messages = _jsonl_messages()
    jsonl = _write_jsonl(tmp_path / "history.jsonl", messages)
    parquet_rows = _write_parquet(tmp_path / "history.parquet")
    unique = len(messages) + parquet_rows

    summary = _import(settings, tmp_path / "history.jsonl", tmp_path / "history.parquet")
    assert summary["read"] == jsonl["lines"] + parquet_rows
    assert summary["produced"] == unique + 2  # the two duplicates go through; the lake dedups
    assert summary["rejected_by_reason"] == {"json": 1, "required": 1, "junk_id": 1}
    assert {e["number"]: e["reason"] for e in summary["examples"]} == jsonl["bad"]

    wait_until(
        lambda: _scalar(settings, "SELECT count(*) FROM events") == unique,
        90,
        interval=0.5,
        what="every imported event in the warehouse",
    )
    assert _scalar(settings, "SELECT count(DISTINCT event_id) FROM events") == unique
    assert _scalar(settings, "SELECT count(*) FROM events WHERE event_id LIKE 'p-%'") == 56
    # The historic time is kept, and receivedAt where the file has it.
    assert _scalar(settings, "SELECT min(timestamp) = '2026-03-02 09:03:00+00' FROM events"), (
        "historic timestamp lost"
    )
    assert _scalar(
        settings,
        "SELECT count(*) FROM events WHERE event_id LIKE 'j-%'"
        " AND received_at = timestamp + INTERVAL 1 SECOND",
    ) == sum(1 for m in messages if "messageId" in m)

    # The refused lines are on the dead-letter topic, stage "import", with their line.
    consumer = KafkaConsumer(
        settings.topic("dead_letter"),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    dead = [orjson.loads(m.value) for m in consumer]
    consumer.close()
    assert sorted((d["stage"], d["reason"]) for d in dead) == [
        ("import", "json"),
        ("import", "junk_id"),
        ("import", "required"),
    ]
    assert any(d["message"].startswith("history.jsonl:11: ") for d in dead)

    again = _import(settings, tmp_path / "history.jsonl", tmp_path / "history.parquet")
    assert (again["produced"], again["already_imported"]) == (0, unique + 2)

    # Every session seen on an event has its summary (the idle timer ran), then verify.
    wait_until(
        lambda: (
            _scalar(settings, "SELECT count(DISTINCT session_id) FROM events")
            == _scalar(settings, "SELECT count(*) FROM sessions")
        ),
        60,
        interval=0.5,
        what="session summaries in the warehouse",
    )
    assert _scalar(settings, "SELECT count(*) FROM events") == unique  # still once each
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "verify", "--format", "json", "--strict"],
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = orjson.loads(done.stdout)
    assert report["verdict"] == "equal" and report["events"] == unique
    assert report["checks"]["events"]["compared"] == unique
    assert report["checks"]["identities"]["compared"] == 10 + 8  # identifies, parquet users
    assert report["checks"]["sessions"]["compared"] > 100


def test_import_with_kafka_unreachable_is_one_line_and_non_zero(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "one.jsonl"
    path.write_text('{"type":"page","anonymousId":"a"}\n')
    address = f"127.0.0.1:{free_port()}"
    settings: Settings = make_settings(kafka_bootstrap=address, kafka_connect_timeout_s=1.0)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "import", str(path)],
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autocap: error: Kafka at " + address)
