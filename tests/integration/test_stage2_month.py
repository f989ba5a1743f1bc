"""Stage 2 over a simulated month of B2B and B2C traffic (the demo's history generator)
through the real broker, a real worker and the real sink, checked by ``autocap verify``'s
batch recomputation of every profile and account:

- a worker killed (SIGKILL) and restarted mid-stream: zero differences at the end;
- a property definition added after history exists: ``autocap backfill-state`` fills it for
  old persons without new events, while live events flow, with exact counts.
"""

from __future__ import annotations

import contextlib
import random
import re
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import duckdb
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

import pipeline.demo
from collectors.http.normalize import Limits
from pipeline.backfill.records import historic_record
from pipeline.batch.verify import VerifyReport, verify_warehouse
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.demo.journeys import history
from pipeline.errors import QueryError
from pipeline.settings import Settings
from pipeline.timeutil import utc_now
from tests.conftest import autocap, child_env, wait_until

DEMO_DEFINITIONS = (Path(pipeline.demo.__file__).parent / "definitions.yaml").read_text()
PROPERTIES = """
properties:
  - name: pricing_views
    kind: count
    event: Viewed Pricing
  - name: lead_score
    kind: score
    half_life: 14d
    weights: {Viewed Pricing: 5, Signed Up: 20, Upgraded: 40}
  - name: first_referrer_path
    kind: first
    field: context.page.path
  - name: tier
    kind: case
    cases:
      - when: {lead_score: {gte: 40}}
        then: hot
    else: cold
"""
ADDED = """
  - name: orders_30d
    kind: count
    event: Order Completed
    window: 30d
  - name: revenue
    kind: sum
    event: Order Completed
    field: properties.revenue
  - name: dashboards
    kind: count
    event: Created Dashboard
"""


#: A cohort added with the properties: the seed fills it from history.
ADDED_COHORT = """  - name: shoppers_30d
    where: {performed: {event: Viewed Product, within: 30d}}
"""


def _shoppers(settings: Settings) -> int:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        ((count,),) = con.execute(
            "SELECT count(*) FROM cohort_membership WHERE cohort = 'shoppers_30d'"
        ).fetchall()
    finally:
        con.close()
    return int(count)


def _records(days: int, visits_per_day: int, seed: int) -> list[tuple[bytes, bytes]]:
    """A month of demo history as raw records (key, value), in time order, as ``autocap
    import`` makes them."""
    rng = random.Random(seed)
    end = utc_now() - timedelta(minutes=5)
    messages = sorted(history(rng, end, days, visits_per_day), key=lambda m: m["timestamp"])
    out = []
    for message in messages:
        record, value = historic_record(message, end, Limits())
        key = record.get("anonymous_id") or record["user_id"]
        out.append((str(key).encode(), value))
    return out


def _send(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def _verify(settings: Settings) -> VerifyReport | None:
    # A duckdb.Error: the catalog is being replaced (or not written yet); poll again.
    if not settings.warehouse_path.exists():
        return None
    with contextlib.suppress(duckdb.Error, QueryError):
        return verify_warehouse(settings)
    return None


def _behind(log: str) -> set[str]:
    """Persons whose restarted worker restored a profile with fewer events than it had
    folded before the restart, as the seed's exactness check reports them: the embedded
    broker under-reports a changelog partition's end offset, so Faust's recovery stops
    before the partition's last records while the source offsets were committed past them
    (a known issue of this broker, see docs/definitions.md). The seed cannot repair the
    built-ins of such a profile; every other person must be exact."""
    pattern = (
        r"seed for (\S+): inexact: it folded (\d+) lake events,"
        r" (\d+) re-folded from the tail, but the profile folded (\d+)"
    )
    return {
        p
        for p, lake, tail, folded in re.findall(pattern, log)
        if int(folded) < int(lake) + int(tail)
    }


def _stage2_equal(
    report: VerifyReport | None, persons_at_least: int, except_: set[str] = frozenset()
) -> bool:
    # Stage 1's checks are its own tests' business (a historic month trips its session
    # timer rules); here every profile and account must be equal, not even explained.
    if report is None:
        return False
    profiles, accounts = report.checks.get("profiles"), report.checks.get("accounts")
    if profiles is None or accounts is None or profiles.compared < persons_at_least:
        return False
    if except_:
        shown = [e["person_id"] for x in profiles.examples.values() for e in x]
        if not set(shown) <= except_ or any(
            n > len(except_) for n in profiles.differences.values()
        ):
            return False
        return not (profiles.expected or accounts.differences or accounts.expected)
    stage2 = (profiles, accounts)
    return not any(c.differences or c.expected for c in stage2) and accounts.compared > 0


class Pipeline:
    """A worker and a sink as real subprocesses, logging to one file."""

    def __init__(self, settings: Settings) -> None:
        self.env = child_env(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = settings.data_dir / "children.log"
        self.log = self.log_path.open("a")
        self.children = {role: self.start(role) for role in ("worker", "sink")}

    def start(self, role: str) -> subprocess.Popen[str]:
        return autocap(role, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self, role: str, sig: int) -> None:
        child = self.children[role]
        child.send_signal(sig)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)

    def close(self) -> None:
        for role, child in self.children.items():
            if child.poll() is None:
                self.stop(role, signal.SIGTERM)
        self.log.close()


@pytest.mark.timeout(420)
def test_a_month_with_a_killed_worker_equals_verify(
    broker: EmbeddedBroker, make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    definitions = tmp_path / "definitions.yaml"
    definitions.write_text(DEMO_DEFINITIONS + PROPERTIES + ADDED)
    settings: Settings = make_settings(
        kafka_bootstrap=broker.bootstrap, session_timer_s=2, definitions_path=definitions
    )
    ensure_topics(settings, broker.bootstrap)
    records = _records(days=30, visits_per_day=6, seed=3)
    pipeline = Pipeline(settings)
    report: VerifyReport | None = None
    try:
        half = len(records) // 2
        _send(broker.bootstrap, settings.topic("raw"), records[:half])
        profiles = KafkaConsumer(
            settings.topic("profiles"),
            bootstrap_servers=broker.bootstrap,
            auto_offset_reset="earliest",
        )
        wait_until(lambda: profiles.poll(100), 90, what="stage 2's first profile")
        profiles.close()
        pipeline.stop("worker", signal.SIGKILL)
        pipeline.children["worker"] = pipeline.start("worker")
        # Replayed records too: the first third again, as a producer retry sends them.
        _send(broker.bootstrap, settings.topic("raw"), records[half:] + records[: half // 2])

        def equal() -> bool:
            nonlocal report
            report = _verify(settings)
            return _stage2_equal(report, persons_at_least=50)

        wait_until(equal, 240, interval=2.0, what="verify: profiles and accounts equal")
    except BaseException:
        (tmp_path / "report.json").write_bytes(orjson.dumps(report.to_json() if report else None))
        print(orjson.dumps(report.to_json() if report else None).decode()[:6000])
        print(pipeline.log_path.read_text()[-4000:])
        raise
    finally:
        pipeline.close()
    # The analyst's command agrees: exit 0 and the same verdict.
    done = subprocess.run(
        [*_cli(), "verify", "--format", "json"],
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    checks = orjson.loads(done.stdout)["checks"]
    for name in ("profiles", "accounts"):
        assert checks[name]["differences"] == {} == checks[name]["expected_differences"]
    assert checks["profiles"]["compared"] >= 50 and checks["accounts"]["compared"] >= 3


def _cli() -> list[str]:
    return [sys.executable, "-m", "pipeline"]


@pytest.mark.timeout(420)
def test_an_added_property_is_backfilled_exactly_while_events_flow(
    broker: EmbeddedBroker, make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    definitions = tmp_path / "definitions.yaml"
    definitions.write_text(DEMO_DEFINITIONS + PROPERTIES)
    settings: Settings = make_settings(
        kafka_bootstrap=broker.bootstrap, session_timer_s=2, definitions_path=definitions
    )
    ensure_topics(settings, broker.bootstrap)
    records = _records(days=30, visits_per_day=6, seed=5)
    cut = len(records) * 2 // 3
    pipeline = Pipeline(settings)
    report: VerifyReport | None = None
    try:
        _send(broker.bootstrap, settings.topic("raw"), records[:cut])
        wait_until(
            lambda: _stage2_equal(_verify(settings), persons_at_least=50),
            240,
            interval=2.0,
            what="history in the lake",
        )
        # The analyst adds properties, restarts the worker, and backfills while the rest
        # of the month keeps arriving.
        with_cohort = DEMO_DEFINITIONS.replace("\ncohorts:\n", "\ncohorts:\n" + ADDED_COHORT, 1)
        definitions.write_text(with_cohort + PROPERTIES + ADDED)
        # Killed, not stopped: after a clean stop this Faust/Tansu pair restores a table
        # without the last changelog records of a partition while the source offsets are
        # committed past them (the seed's exactness check caught it: a profile one event
        # short); after a kill the uncommitted records are replayed and re-folded.
        pipeline.stop("worker", signal.SIGKILL)
        pipeline.children["worker"] = pipeline.start("worker")
        live = threading.Thread(
            target=_send, args=(broker.bootstrap, settings.topic("raw"), records[cut:])
        )
        live.start()
        done = subprocess.run(
            [*_cli(), "backfill-state", "--format", "json"],
            env=child_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
        )
        live.join()
        assert done.returncode == 0, done.stdout + done.stderr
        summary = orjson.loads(done.stdout)
        assert summary["persons"] >= 50 and "revenue" in summary["properties"]
        assert "shoppers_30d" in summary["cohorts"]

        def equal() -> bool:
            nonlocal report
            report = _verify(settings)
            behind = _behind(pipeline.log_path.read_text())
            cohorts = report.checks.get("cohorts") if report else None
            return (
                _stage2_equal(report, persons_at_least=summary["persons"], except_=behind)
                and cohorts is not None
                and not cohorts.differences
                and _shoppers(settings) > 0
            )

        wait_until(equal, 240, interval=2.0, what="verify with the added properties")
        filled = _filled_without_new_events(settings, records[cut:])
        assert filled > 0, "no old buyer got the added properties"
        # Every seed was exact, except where the restarted worker's own state was behind
        # the lake: see _behind.
        inexact = re.findall(r"seed for (\S+): inexact", pipeline.log_path.read_text())
        assert set(inexact) <= _behind(pipeline.log_path.read_text())
        assert len(inexact) <= summary["persons"] // 20
    except BaseException:
        (tmp_path / "report.json").write_bytes(orjson.dumps(report.to_json() if report else None))
        print(orjson.dumps(report.to_json() if report else None).decode()[:6000])
        print(pipeline.log_path.read_text()[-4000:])
        raise
    finally:
        pipeline.close()


def _filled_without_new_events(settings: Settings, live: list[tuple[bytes, bytes]]) -> int:
    """Persons with revenue who sent nothing after the definition was added."""
    recent = {orjson.loads(v)["event_id"] for _, v in live}
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT p.person_id, p.properties FROM lake_profiles p WHERE NOT EXISTS ("
            " SELECT 1 FROM lake_events e WHERE e.person_id = p.person_id"
            " AND list_contains($ids, e.event_id))",
            {"ids": sorted(recent)},
        ).fetchall()
    finally:
        con.close()
    return sum(1 for _, props in rows if (orjson.loads(props).get("revenue") or 0) > 0)
