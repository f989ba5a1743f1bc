"""`autocap forget ID` end to end, against a running `autocap up` on the real broker: the
person's rows leave every Parquet file and warehouse view, their changelog keys get
tombstones, their new events are dropped at the collector and counted, and the audit log
records the request. Another person is left alone."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
from kafka import KafkaConsumer, TopicPartition

from pipeline.broker import EmbeddedBroker
from pipeline.forget.tombstones import changelog_topics
from pipeline.settings import Settings
from tests.conftest import WRITE_KEY, autocap, child_env, wait_until
from tests.reliability.harness import Pipeline


def _post(base: str, *messages: dict[str, object]) -> None:
    resp = httpx.post(
        base + "/v1/batch", json={"batch": list(messages)}, auth=(WRITE_KEY, ""), timeout=10
    )
    assert resp.status_code == 200, resp.text


def _track(anon: str, name: str, **extra: object) -> dict[str, object]:
    return {
        "type": "track",
        "event": name,
        "anonymousId": anon,
        "messageId": uuid.uuid4().hex,
        **extra,
    }


def _query(settings: Settings, sql: str, *params: object) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    except duckdb.Error:
        return []
    finally:
        con.close()


def _everything(settings: Settings) -> str:
    """Every row of every Parquet file under the data dir, and of every catalog view."""
    con = duckdb.connect()
    parts = []
    for parquet in sorted(settings.data_dir.rglob("*.parquet")):
        rows = con.execute("SELECT to_json(t)::VARCHAR FROM read_parquet(?) t", [str(parquet)])
        parts += [r[0] for r in rows.fetchall()]
    con.close()
    catalog = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        names = [
            r[0]
            for r in catalog.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
                " UNION SELECT table_name FROM duckdb_tables()"
            ).fetchall()
        ]
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'  # names from the catalog itself
            parts += [
                r[0]
                for r in catalog.execute(f"SELECT to_json(t)::VARCHAR FROM {quoted} t").fetchall()
            ]
    finally:
        catalog.close()
    return "\n".join(parts)


def _changelog_last_values(settings: Settings, bootstrap: str) -> dict[str, bytes | None]:
    """JSON key → the last value written for it, over every changelog topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    last: dict[str, bytes | None] = {}
    try:
        partitions = [
            TopicPartition(t, p)
            for t in changelog_topics(settings, bootstrap)
            for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, "changelogs not read within 60 s"
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    if r.key is not None:
                        last[f"{r.topic}:{orjson.loads(r.key)}"] = r.value
    finally:
        consumer.close()
    return last


def _forget(settings: Settings, person: str) -> dict[str, Any]:
    """Run ``autocap forget PERSON --settle 2``; its JSON report."""
    done = autocap(
        "forget",
        person,
        "--settle",
        "2",
        "--format",
        "json",
        env=child_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    report: dict[str, Any] = orjson.loads(out)
    return report


def _forgotten_metric(base: str) -> float:
    for line in httpx.get(base + "/metrics", timeout=5).text.splitlines():
        if line.startswith("autocap_collector_events_forgotten_total "):
            return float(line.split()[1])
    return 0.0


def test_forget_removes_a_person_everywhere_and_drops_their_new_events(
    broker: EmbeddedBroker,
    make_settings,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    settings: Settings = make_settings(kafka_bootstrap=broker.bootstrap)
    pipeline = Pipeline(settings, tmp_path / "up.log").start()
    tag = uuid.uuid4().hex[:8]
    anon, user, other = f"fa-anon-{tag}", f"fa-user-{tag}", f"keep-anon-{tag}"
    try:
        _post(
            pipeline.base,
            _track(anon, "Viewed Pricing"),
            {"type": "identify", "anonymousId": anon, "userId": user, "traits": {"plan": "pro"}},
            _track(anon, "Purchased", userId=user, properties={"amount": 42}),
            _track(other, "Viewed Pricing"),
            _track(other, "Purchased"),
        )
        wait_until(
            lambda: (
                len(
                    _query(
                        settings, "SELECT 1 FROM events WHERE anonymous_id IN (?, ?)", anon, other
                    )
                )
                == 5
            ),
            60,
            interval=0.5,
            what="both people's events in the warehouse",
        )
        (person,) = _query(
            settings, "SELECT DISTINCT person_id FROM events WHERE user_id = ?", user
        )[0]
        before = _changelog_last_values(settings, broker.bootstrap)
        theirs = [k for k in before if k.split(":", 1)[1] in (anon, user, person)]
        assert theirs, f"no changelog key for the person: {sorted(before)[:10]}"

        started = time.monotonic()
        report = _forget(settings, user)
        took = time.monotonic() - started
        print(f"forget took {took:.1f}s: {report}")
        assert took < 300
        assert report["rows_removed"] >= 3 and report["tombstones"] >= len(theirs) > 0

        # No row for the person anywhere; the other person untouched.
        everything = _everything(settings)
        for secret in (anon, user, person):
            assert secret not in everything, secret
        assert other in everything
        assert len(_query(settings, "SELECT 1 FROM events WHERE anonymous_id = ?", other)) == 2
        # Tombstones: the last value of each of their changelog keys is None.
        after = _changelog_last_values(settings, broker.bootstrap)
        assert all(after[k] is None for k in theirs), {k: after[k] for k in theirs}
        assert any(after[k] is not None for k in after if other in k)

        # New events for the id are dropped at the collector, answered 200, and counted.
        dropped_before = _forgotten_metric(pipeline.base)
        _post(pipeline.base, _track(anon, "Came Back"), _track("x-" + tag, "Sneaky", userId=user))
        sentinel = _track(other, "Sentinel")
        _post(pipeline.base, sentinel)
        wait_until(
            lambda: _query(
                settings, "SELECT 1 FROM events WHERE event_id = ?", sentinel["messageId"]
            ),
            60,
            interval=0.5,
            what="the sentinel",
        )
        assert _forgotten_metric(pipeline.base) - dropped_before == 2
        assert not _query(
            settings, "SELECT 1 FROM events WHERE anonymous_id = ? OR user_id = ?", anon, user
        )

        audit = [
            orjson.loads(line)
            for line in (settings.data_dir / "audit" / "forget.jsonl").read_text().splitlines()
        ]
        assert [(a["id"], a["status"]) for a in audit] == [(user, "requested"), (user, "done")]
    finally:
        pipeline.stop()


def test_forget_with_a_bad_id_is_one_clear_line(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings()
    for bad, says in (("", "the id is empty"), ("x" * 600, "longer than 512")):
        done = subprocess.run(
            [*autocap_cmd(), "forget", bad],
            env=child_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("autocap: error: forget:"), done.stderr
        assert says in lines[0]


def autocap_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "pipeline"]


TIMED_DEFINITIONS = """
cohorts:
  - name: clicked_lately
    where: {performed: {event: Clicked, within: 25s}}
"""


def test_running_workers_forget_too_so_their_timers_write_nothing_back(
    broker: EmbeddedBroker,
    make_settings,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """A worker's timers act on its in-memory tables without new events: the idle-session
    timer summarises a session into `sessions`, the cohort timer sends an exit to
    `cohort_changes`. Both fire after `autocap forget` is done here (sessions end after
    24 s, the cohort window is 25 s); neither may bring the person back into the lake. And
    the account they were a member of drops them."""
    definitions = tmp_path / "definitions.yaml"
    definitions.write_text(TIMED_DEFINITIONS)
    settings: Settings = make_settings(
        kafka_bootstrap=broker.bootstrap,
        definitions_path=definitions,
        session_inactivity_minutes=0.4,
        session_timer_s=0.5,
        cohort_timer_s=0.5,
    )
    pipeline = Pipeline(settings, tmp_path / "up.log").start()
    tag = uuid.uuid4().hex[:8]
    anon, other, account = f"ft-anon-{tag}", f"keep-anon-{tag}", f"acct-{tag}"
    members = "SELECT members, titles FROM accounts WHERE account_id = ?"
    try:
        for who, title in ((anon, "CTO"), (other, "Engineer")):
            _post(
                pipeline.base,
                {"type": "identify", "anonymousId": who, "traits": {"title": title}},
                {"type": "group", "anonymousId": who, "groupId": account},
                _track(who, "Clicked"),
            )
        entered = "SELECT subject_id FROM cohort_history WHERE change = 'enter'"
        wait_until(
            lambda: (
                {f"a:{anon}", f"a:{other}"} <= {r[0] for r in _query(settings, entered)}
                and _query(settings, members, account) == [(2, ["CTO", "Engineer"])]
            ),
            60,
            interval=0.5,
            what="both people in the cohort and the account",
        )
        report = _forget(settings, anon)
        assert report["worker_forget_records"] >= 4 and report["workers_forgot"], report
        assert anon not in _everything(settings)
        # The account no longer counts them (their title was theirs).
        wait_until(
            lambda: _query(settings, members, account) == [(1, ["Engineer"])],
            30,
            interval=0.5,
            what="the account without the forgotten member",
        )
        assert not _query(settings, "SELECT 1 FROM sessions WHERE anonymous_id = ?", other)

        # The other person's timers fire as usual: their session is summarised and they
        # leave the cohort. By then the forgotten person's would have too.
        wait_until(
            lambda: (
                _query(settings, "SELECT 1 FROM sessions WHERE anonymous_id = ?", other)
                and _query(
                    settings,
                    "SELECT 1 FROM cohort_history WHERE subject_id = ? AND change = 'exit'",
                    f"a:{other}",
                )
            ),
            90,
            interval=0.5,
            what="the other person's session summary and cohort exit",
        )
        time.sleep(3)  # a sink flush and a catalog swap after the last timer round
        assert anon not in _everything(settings)
        after = _changelog_last_values(settings, broker.bootstrap)
        assert all(v is None for k, v in after.items() if anon in k), {
            k: v for k, v in after.items() if anon in k
        }
    finally:
        pipeline.stop()
