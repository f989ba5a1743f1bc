"""Stage 2 end to end: raw events (some sent twice, as a crash replays them) → a real worker
→ the real sink → the ``persons`` and ``accounts`` views equal the batch fold over the same
events."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from collectors.http.normalize import Receipt, normalize
from pipeline.accounts import account_record, account_updates, fold_account
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.definitions import load_definitions
from pipeline.identity import device_key
from pipeline.profiles import fold_profile, profile_record
from pipeline.sessions import SessionRules
from pipeline.settings import Settings
from pipeline.stream.enrich import process
from pipeline.timeutil import format_ts
from tests.conftest import autocap, child_env, wait_until

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
DEVICES = 60
DEFINITIONS = """
events:
  - name: Viewed Pricing
    match: {event: $pageview, url: "*/pricing*"}
properties:
  - name: pricing_views
    kind: count
    event: Viewed Pricing
  - name: lead_score
    kind: score
    half_life: 7d
    weights: {Viewed Pricing: 5, Signed Up: 20}
  - name: first_plan
    kind: first
    field: properties.plan
  - name: tier
    kind: case
    cases:
      - when: {lead_score: {gte: 20}}
        then: hot
    else: cold
"""


def _raw_events(seed: int = 11) -> list[dict[str, Any]]:
    """Per device a few page views and sign-ups; a third identify (one device per user, so
    each person's order is one partition's order), some of those join an account."""
    rng = random.Random(seed)
    events = []
    for d in range(DEVICES):
        at = T0 + timedelta(minutes=rng.randrange(600))
        for n in range(rng.randint(2, 6)):
            at += timedelta(minutes=rng.choice([1, 10, 45, 600]))
            url = rng.choice(["https://x.io/", "https://x.io/pricing"])
            message: dict[str, Any] = {
                "type": "track",
                "event": rng.choice(["$pageview", "$pageview", "Signed Up"]),
                "anonymousId": f"dev-{d:03d}",
                "messageId": f"m-{d:03d}-{n}",
                "timestamp": at.isoformat(),
                "properties": {"plan": rng.choice(["free", "pro"]), "$set": {"n": n}},
                "context": {
                    "page": {"url": url, "referrer": f"https://ref{d % 3}.example/"},
                    "locale": rng.choice(["en-US", "de-DE", "fr"]),
                },
            }
            if n == 1 and d % 3 == 0:
                domain = "gmail.com" if d % 2 else f"corp{d % 4}.io"
                message |= {
                    "type": "identify",
                    "userId": f"user-{d}",
                    "traits": {"email": f"p{d}@{domain}", "title": rng.choice(["CTO", "Dev"])},
                }
            if n == 2 and d % 3 == 0:
                account = f"acct-{d % 4}"
                message |= {
                    "type": "group",
                    "userId": f"user-{d}",
                    "groupId": account,
                    "traits": {"name": account, "employees": 40 * (d % 4 + 1)},
                }
            events.append(normalize(message, Receipt.at(at)))
    events.sort(key=lambda e: e["timestamp"])
    return events


def _batch(events: list[dict[str, Any]], definitions_path: Path) -> tuple[dict[str, Any], ...]:
    """Stage 1 then stage 2 over the events in order, merged as the persons view merges."""
    definitions = load_definitions(definitions_path)
    rules = SessionRules(timedelta(minutes=30), timedelta(hours=24))
    devices: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    accounts: dict[str, Any] = {}
    merges: dict[str, str] = {}
    for record in events:
        key = device_key(record)
        identity, session, out = process(
            *devices.get(key, (None, None)), record, rules, definitions
        )
        devices[key] = (identity, session)
        merges |= {c["from_person"]: c["to_person"] for c in out.identities if c["kind"] == "link"}
        person = out.enriched["person_id"]
        profiles[person], _ = fold_profile(profiles.get(person), out.enriched, definitions)
        for update in account_updates(out.enriched, profile_record(profiles[person], definitions)):
            account = update["account_id"]
            accounts[account], _ = fold_account(accounts.get(account), update)
    persons: dict[str, dict[str, Any]] = {}
    for person_id, state in sorted(profiles.items(), key=lambda kv: kv[1].last_seen):
        record = profile_record(state, definitions)
        merged = persons.setdefault(merges.get(person_id, person_id), {"event_count": 0})
        merged["event_count"] += record["event_count"]
        merged["first_seen"] = min(merged.get("first_seen") or "~", record["first_seen"])
        # Last values from the most recently seen profile (the sort above).
        merged |= {k: record[k] for k in ("last_seen", "traits", "properties", "email_kind")}
    return persons, {a: account_record(s) for a, s in accounts.items()}


def _views(warehouse: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT person_id, event_count, first_seen, last_seen, traits, properties,"
            " email_kind FROM persons"
        ).fetchall()
        persons = {
            r[0]: {
                "event_count": r[1],
                "first_seen": format_ts(r[2]),
                "last_seen": format_ts(r[3]),
                "traits": orjson.loads(r[4]),
                "properties": orjson.loads(r[5]),
                "email_kind": r[6],
            }
            for r in rows
        }
        cursor = con.execute("SELECT * FROM accounts")
        names = [d[0] for d in cursor.description]
        accounts = {}
        for row in cursor.fetchall():
            record = dict(zip(names, row, strict=True))
            record["traits"] = orjson.loads(record["traits"])
            if record["last_activity"] is not None:
                record["last_activity"] = format_ts(record["last_activity"])
            accounts[record["account_id"]] = record
        return persons, accounts
    finally:
        con.close()


def _send(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for record in records:
        producer.send(topic, key=record["anonymous_id"].encode(), value=orjson.dumps(record))
    producer.flush()
    producer.close()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kill_worker", [False, True], ids=["replayed_records", "worker_killed"])
def test_persons_and_accounts_views_equal_the_batch_fold(
    broker: EmbeddedBroker, make_settings, tmp_path: Path, kill_worker: bool
) -> None:  # type: ignore[no-untyped-def]
    definitions_path = tmp_path / "definitions.yaml"
    definitions_path.write_text(DEFINITIONS)
    settings: Settings = make_settings(
        kafka_bootstrap=broker.bootstrap, session_timer_s=3600, definitions_path=definitions_path
    )
    ensure_topics(settings, broker.bootstrap)
    events = _raw_events()
    expected_persons, expected_accounts = _batch(events, definitions_path)
    assert len(expected_accounts) == 4 and any(p.startswith("u:") for p in expected_persons)

    env = child_env(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = (settings.data_dir / "children.log").open("w")
    children = {
        role: autocap(role, env=env, stdout=log, stderr=subprocess.STDOUT)
        for role in ("worker", "sink")
    }
    views: tuple[dict[str, Any], dict[str, Any]] = ({}, {})

    def read_views() -> tuple[dict[str, Any], dict[str, Any]]:
        nonlocal views
        # A duckdb.Error: the catalog is being replaced; the next poll reads it.
        if settings.warehouse_path.exists():
            with contextlib.suppress(duckdb.Error):
                views = _views(settings.warehouse_path)
        return views

    try:
        half = len(events) // 2
        _send(broker.bootstrap, settings.topic("raw"), events[:half])
        if kill_worker:
            # Mid-stream, at stage 2's first output: the tables come back from their
            # changelogs, and what the worker had not committed is replayed.
            profiles = KafkaConsumer(
                settings.topic("profiles"),
                bootstrap_servers=broker.bootstrap,
                auto_offset_reset="earliest",
            )
            wait_until(lambda: profiles.poll(100), 90, what="stage 2's first profile")
            profiles.close()
            children["worker"].kill()
            children["worker"].wait(10)
            children["worker"] = autocap("worker", env=env, stdout=log, stderr=subprocess.STDOUT)
        # The first third again after everything, as a producer retry or a replay sends it.
        _send(broker.bootstrap, settings.topic("raw"), events[half:] + events[: len(events) // 3])
        wait_until(
            lambda: read_views() == (expected_persons, expected_accounts),
            150,
            interval=1.0,
            what="persons and accounts equal to the batch",
        )
    except BaseException:
        persons, accounts = views
        wrong = {p: (persons.get(p), want) for p, want in expected_persons.items()}
        wrong = {p: pair for p, pair in wrong.items() if pair[0] != pair[1]}
        print(f"{len(wrong)} persons differ, e.g. {next(iter(wrong.items()), None)}")
        print("accounts", accounts, expected_accounts)
        raise
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
