"""Records of every field shape, sent through the real embedded broker to every topic the
sink reads, land in the lake equal to the input; records that do not fit go to the
dead-letter topic; every offset is committed; SIGTERM stops the sink within 10 s."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.settings import Settings
from pipeline.timeutil import parse_ts
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import JSON_COLUMNS, TABLES
from tests.conftest import autocap, child_env, wait_until

AT = "2026-11-23T10:00:00.123Z"
NESTED: list[Any] = [
    {"page": {"path": "/p", "title": "Prix — été ✓ 🚀"}, "screen": {"w": 1920, "r": 1.5}},
    [{"tag": "a", "classes": ["x", "y"], "nth-child": 3}, {"tag": "body", "attrs": {}}],
    {"deep": {"a": [1, [2, [3, {"b": None}]]], "t": True, "f": False}},
    "a JSON string",
    12.5,
    {},
    [],
]


def _events() -> list[dict[str, Any]]:
    """Every column set, every nullable one missing or null, nested JSON of every shape."""
    rows: list[dict[str, Any]] = []
    for n in range(240):
        row: dict[str, Any] = {
            "event_id": f"ev-{n:04d}",
            "type": ("track", "page", "identify", "group", "alias")[n % 5],
            "timestamp": f"2026-11-23T10:{n % 60:02d}:00.{n % 1000:03d}Z",
            "received_at": AT,
        }
        if n % 3:  # the rest: only the required columns
            row |= {
                "event": "$click" if n % 2 else None,
                "anonymous_id": f"anon-{n}",
                "user_id": f"user-{n}" if n % 4 else None,
                "person_id": f"u:user-{n}",
                "session_id": f"s-{n % 7}",
                "session_seq": (n, 0, -1, 2**62)[n % 4],
                "account_id": "acme" if n % 5 == 0 else None,
                "previous_id": f"anon-{n - 1}" if n % 11 == 0 else None,
                "sent_at": "2026-11-23T10:00:01.000Z" if n % 2 else None,
                "original_timestamp": "2026-11-23T11:00:00+01:00",
                "context": NESTED[n % len(NESTED)],
                "properties": NESTED[(n + 1) % len(NESTED)] if n % 4 else None,
                "traits": {"email": f"p{n}@example.com", "plan": None},
                "elements": NESTED[1],
                "flags": ["late_event"] if n % 6 == 1 else [],
                "defined_events": ["signup", "Clicked CTA"] if n % 2 else None,
                "not_a_column": {"ignored": n},
            }
        rows.append(row)
    return rows


OTHER_TABLES: dict[str, list[dict[str, Any]]] = {
    "sessions": [
        {"session_id": "s-1", "anonymous_id": "anon-1", "seq": 1, "start": AT, "end": AT,
         "duration_s": 12, "events": 3, "pageviews": 2, "entry_url": "https://x/1",
         "campaign": {"utm_source": "news"}, "browser": "Firefox"},
        {"session_id": "s-2", "anonymous_id": "anon-2", "duration_s": 0.25, "campaign": None},
    ],
    "identities": [
        {"kind": "identify", "from_person": "a:anon-1", "to_person": "u:user-1",
         "anonymous_id": "anon-1", "user_id": "user-1", "event_id": "ev-0001",
         "timestamp": AT, "received_at": AT, "devices": 4, "limit": 3},
    ],
    "profiles": [
        {"person_id": "u:user-1", "version": 7, "first_seen": AT, "last_seen": AT,
         "event_count": 10, "account_ids": ["acme", "beta"], "traits": {"plan": "pro"},
         "properties": {"ltv": 1.5, "tags": ["a"]}},
    ],
    "accounts": [
        {"account_id": "acme", "version": 2, "name": "Acme", "employees": 250,
         "annual_revenue": 5000000, "technologies": [], "traits": {"tier": 1},
         "titles": ["CTO"], "roles": None, "lead_score": 0.75, "last_activity": AT},
    ],
    "cohort_changes": [
        {"cohort": "power", "subject_kind": "person", "subject_id": "u:user-1",
         "change": "enter", "at": AT, "criterion": "did", "event_id": "ev-0002",
         "detail": {"count": 5, "window": "7d"}},
    ],
}  # fmt: skip

BAD = [
    b"{not json",
    orjson.dumps({"type": "track", "timestamp": AT, "received_at": AT}),  # no event_id
    orjson.dumps({"event_id": "bad-ts", "type": "track", "timestamp": "soon", "received_at": AT}),
    orjson.dumps({"event_id": "bad-type", "type": "track", "timestamp": AT, "received_at": AT,
                  "session_seq": "three"}),
]  # fmt: skip


def _expected(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """The lake row the input should become: JSON columns parsed, times as instants."""
    out: dict[str, Any] = {}
    for f in schema:
        value = row.get(f.name)
        if pa.types.is_timestamp(f.type) and value is not None:
            value = parse_ts(value)
        elif pa.types.is_floating(f.type) and value is not None:
            value = float(value)
        out[f.name] = value
    return out


def _lake_rows(lake: Lake, table: str) -> list[dict[str, Any]]:
    rows = []
    for path in lake.data_files(table):
        for row in pq.read_table(path).to_pylist():
            for name in JSON_COLUMNS & set(row):
                row[name] = None if row[name] is None else orjson.loads(row[name])
            rows.append(row)
    return rows


def _all_committed(settings: Settings, bootstrap: str, ends: dict[TopicPartition, int]) -> bool:
    # A group member that never joins: it only reads the group's committed offsets.
    probe = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=settings.group_id("sink"), enable_auto_commit=False
    )
    try:
        return all(probe.committed(tp) == end for tp, end in ends.items())
    finally:
        probe.close()


def test_every_field_shape_lands_equal_and_bad_records_are_dead_lettered(
    broker: EmbeddedBroker, make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(
        kafka_bootstrap=broker.bootstrap,
        partitions=3,
        sink_batch_max_records=40,  # many batches: the pipelined path, commits in order
        sink_batch_max_seconds=0.2,
        compact_interval_s=0.0,
    )
    ensure_topics(settings, broker.bootstrap)
    sent = {"events": _events(), **OTHER_TABLES}
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    produced: dict[TopicPartition, int] = {}
    for table, rows in sent.items():
        topic = settings.topic(TABLES[table][0])
        for n, row in enumerate(rows):
            meta = producer.send(topic, key=str(n).encode(), value=orjson.dumps(row)).get(10)
            tp = TopicPartition(topic, meta.partition)
            produced[tp] = max(produced.get(tp, 0), meta.offset + 1)
    for value in BAD:
        meta = producer.send(settings.topic("enriched"), key=b"bad", value=value).get(10)
        tp = TopicPartition(settings.topic("enriched"), meta.partition)
        produced[tp] = max(produced.get(tp, 0), meta.offset + 1)
    producer.close()

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "sink.log"
    sink = autocap("sink", env=child_env(settings), stdout=log.open("w"), stderr=subprocess.STDOUT)
    lake = Lake(settings.lake_dir)
    try:
        for table, rows in sent.items():
            count = len(rows)
            wait_until(
                lambda t=table, n=count: len(_lake_rows(lake, t)) >= n,
                90,
                what=f"{count} rows in lake table {table}",
            )
        for table, rows in sent.items():
            schema = TABLES[table][1]
            key = schema.names[0] if table != "identities" else "event_id"
            landed = sorted(_lake_rows(lake, table), key=lambda r: str(r[key]))
            wanted = sorted((_expected(r, schema) for r in rows), key=lambda r: str(r[key]))
            assert landed == wanted, table

        consumer = KafkaConsumer(
            settings.topic("dead_letter"),
            bootstrap_servers=broker.bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=1000,
        )
        dead: list[dict[str, Any]] = []
        wait_until(
            lambda: dead.extend(orjson.loads(m.value) for m in consumer) or len(dead) >= len(BAD),
            30,
            what="the dead letters",
        )
        consumer.close()
        assert sorted(d["payload"].encode() for d in dead) == sorted(BAD)
        assert {d["stage"] for d in dead} == {"sink"}
        assert all(d["message"].startswith("events: ") for d in dead)

        wait_until(
            lambda: _all_committed(settings, broker.bootstrap, produced),
            30,
            what="every offset committed",
        )
    finally:
        sink.send_signal(signal.SIGTERM)
        code = sink.wait(10)
    assert code == 0, log.read_text()[-3000:]
