"""Cohorts end to end: raw events (sent twice, as a replay sends them) → a real worker → the
real sink → ``cohort_history`` / ``cohort_membership``; a 5-second window empties through
the timer with no new events; ``autocap cohort why`` explains a member and ``autocap
verify`` finds no cohort difference."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from kafka import KafkaProducer

from collectors.http.normalize import Receipt, normalize
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.settings import Settings
from pipeline.timeutil import utc_now
from tests.conftest import autocap, child_env, wait_until

DEFINITIONS = """
events:
  - name: Viewed Pricing
    match: {event: $pageview, url: "*/pricing*"}
cohorts:
  - name: pricing_fans
    where: {performed: {event: Viewed Pricing, at_least: 2, within: 1h}}
  - name: just_clicked
    where: {performed: {event: Clicked, within: 5s}}
  - name: active_teams
    of: account
    where:
      all:
        - users_performed: {event: Clicked, at_least_users: 2, within: 1h}
        - property: {employee_band: {eq: "11-50"}}
"""


def _raw_events(phase: str) -> list[dict[str, Any]]:
    """``setup``: two users identify and join one account, one views pricing twice, an
    anonymous visitor once. ``clicks``: both users click (stamped now: the 5-second window
    is counted from the worker's clock)."""
    start = utc_now()
    pricing = {
        "type": "track",
        "event": "$pageview",
        "context": {"page": {"url": "https://x.io/pricing"}},
    }
    messages: list[dict[str, Any]] = []
    for n in (1, 2):
        user = {"anonymousId": f"dev-{n}", "userId": f"user-{n}"}
        if phase == "setup":
            messages += [
                {"type": "identify", "traits": {"email": f"user-{n}@corp.io"}} | user,
                {"type": "group", "groupId": "acct-1", "traits": {"employees": 40}} | user,
            ]
        else:
            messages.append({"type": "track", "event": "Clicked"} | user)
    if phase == "setup":
        messages += [pricing | {"anonymousId": "dev-1", "userId": "user-1"}] * 2
        messages += [pricing | {"anonymousId": "dev-3"}]
    events = []
    for i, message in enumerate(messages):
        at = start + timedelta(milliseconds=10 * i)
        message = {**message, "messageId": f"{phase}-{i}", "timestamp": at.isoformat()}
        events.append(normalize(message, Receipt.at(at)))
    return events


def _send(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for record in records:
        producer.send(topic, key=record["anonymous_id"].encode(), value=orjson.dumps(record))
    producer.flush()
    producer.close()


def _query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    if not warehouse.exists():
        return []
    with contextlib.suppress(duckdb.Error):  # being replaced: the next poll reads it
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    return []


def _cli(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *args, "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)


@pytest.mark.timeout(180)
def test_members_enter_leave_on_time_and_verify_agrees(
    broker: EmbeddedBroker, make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    definitions_path = tmp_path / "definitions.yaml"
    definitions_path.write_text(DEFINITIONS)
    settings: Settings = make_settings(
        kafka_bootstrap=broker.bootstrap,
        definitions_path=definitions_path,
        cohort_timer_s=0.5,
        catalog_refresh_s=0.3,
    )
    ensure_topics(settings, broker.bootstrap)
    env = child_env(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = (settings.data_dir / "children.log").open("w")
    children = [
        autocap(role, env=env, stdout=log, stderr=subprocess.STDOUT) for role in ("worker", "sink")
    ]
    warehouse = settings.warehouse_path
    try:
        setup = _raw_events("setup")
        _send(broker.bootstrap, settings.topic("raw"), setup)
        members = "SELECT cohort, subject_id FROM cohort_membership ORDER BY ALL"
        wait_until(
            lambda: ("pricing_fans", "u:user-1") in _query(warehouse, members),
            90,
            interval=0.5,
            what="the pricing viewer to enter pricing_fans",
        )
        clicks = _raw_events("clicks")
        # Sent twice, and the setup again: a replay of everything.
        _send(broker.bootstrap, settings.topic("raw"), clicks + clicks + setup)
        wait_until(
            lambda: ("active_teams", "acct-1") in _query(warehouse, members),
            90,
            interval=0.5,
            what="the account to enter active_teams",
        )
        history = (
            "SELECT cohort, subject_id, change, event_id FROM cohort_history"
            " WHERE cohort = 'just_clicked' ORDER BY subject_id, \"at\""
        )

        def both_left() -> list[tuple[Any, ...]]:
            rows = _query(warehouse, history)
            return rows if sum(r[2] == "exit" for r in rows) == 2 else []

        left = wait_until(
            both_left,
            60,
            interval=0.5,
            what="both clickers to leave just_clicked through the timer",
        )
        assert [(r[1], r[2]) for r in left] == [
            ("u:user-1", "enter"),
            ("u:user-1", "exit"),
            ("u:user-2", "enter"),
            ("u:user-2", "exit"),
        ]
        assert all(r[3] is None for r in left if r[2] == "exit")  # the timer, no event
        assert all(r[3] is not None for r in left if r[2] == "enter")
        assert _query(warehouse, members) == [
            ("active_teams", "acct-1"),
            ("pricing_fans", "u:user-1"),
        ]
        # The replay sent no second enter.
        entries = "SELECT count(*) FROM cohort_history WHERE change = 'enter'"
        assert _query(warehouse, entries) == [(4,)]

        why = _cli(env, "cohort", "why", "pricing_fans", "u:user-1")
        assert why[0]["row"] == "entered" and why[0]["event_id"].startswith("setup-")
        assert "performed Viewed Pricing at least 2 times within 1h" in why[0]["criterion"]
        assert {k: why[1][k] for k in ("row", "holds")} == {"row": "now", "holds": True}
        assert why[2]["value"] == "2" and why[2]["holds"] is True
        listed = {row["cohort"]: row["members"] for row in _cli(env, "cohort", "list")}
        assert listed == {"pricing_fans": 1, "just_clicked": 0, "active_teams": 1}
        shown = _cli(env, "cohort", "members", "active_teams")
        assert [row["subject_id"] for row in shown] == ["acct-1"]

        report = _cli(env, "verify")
        cohorts = report["checks"]["cohorts"]
        # 3 persons x 2 person cohorts + 1 account x 1 account cohort.
        assert cohorts["compared"] == 7, cohorts
        assert cohorts["differences"] == {}, cohorts
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
