"""The real server-side SDKs from PyPI, pointed at the collector, land intact on ``<prefix>.raw``.

``segment-analytics-python`` and ``rudder-sdk-python`` are used unchanged, only configured
with the collector's URL and a write key: batched (the SDK's own consumer thread, flushed
before asserting) and synchronous, with and without gzip. Only the collector role runs; the
raw topic is read back with kafka-python.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import rudderstack.analytics as rudder_analytics
from kafka import KafkaConsumer
from rudderstack.analytics import Client as RudderClient
from rudderstack.analytics.version import VERSION as RUDDER_VERSION
from segment.analytics import Client as SegmentClient
from segment.analytics.version import VERSION as SEGMENT_VERSION

from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.settings import Settings
from pipeline.timeutil import parse_ts
from tests.conftest import WRITE_KEY, autocap, child_env, wait_until

#: Both SDKs identify themselves with this library name in ``context.library``.
LIBRARY_NAME = "analytics-python"
#: A client clock reading well in the past, to check timestamps pass through.
PAST = datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=UTC)


@dataclass(frozen=True)
class Collector:
    settings: Settings
    bootstrap: str
    url: str


@dataclass
class Expected:
    """One SDK call and what its raw record must carry."""

    type: str
    event: str | None
    anonymous_id: str | None
    user_id: str | None
    group_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None
    message_id: str = ""


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def collector(
    broker: EmbeddedBroker, make_settings: Callable[..., Settings]
) -> Iterator[Collector]:
    """The collector role as a real process, ready to accept events."""
    settings = make_settings(kafka_bootstrap=broker.bootstrap)
    ensure_topics(settings, broker.bootstrap)
    settings.data_dir.mkdir(parents=True)
    log_path = settings.data_dir / "collector.log"
    with log_path.open("w") as log:
        proc = autocap("collector", env=child_env(settings), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{settings.collector_port}"
    try:
        wait_until(
            lambda: proc.poll() is not None or _ready(url + "/readyz"), 30, what="collector ready"
        )
        if proc.poll() is not None:
            pytest.fail(f"collector exited with {proc.returncode}:\n{log_path.read_text()}")
        yield Collector(settings, broker.bootstrap, url)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the collector did not stop within 20 s of SIGTERM")


def _read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 10.0) -> list[Any]:
    """Every (key, value) on ``topic``, read until ``expected`` records and a quiet second
    (so a duplicate would be seen too). Callers read only after the SDK flushed, and the
    collector answers only once Kafka acknowledged, so a quiet second after some records
    means nothing more is coming: a short read fails fast instead of waiting ``timeout``."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = [(m.key, orjson.loads(m.value)) for m in consumer]
            records += batch
            if len(records) >= expected or (records and not batch):
                break
    finally:
        consumer.close()
    return records


def _scenario(sdk: Any, *, explicit_ids: bool) -> list[Expected]:
    """Make track, identify, group and page calls through ``sdk`` (a client, or a module
    with the same functions); returns what each must arrive as."""
    run = uuid.uuid4().hex[:8]
    anon, user, account = f"anon-{run}", f"user-{run}", f"acct-{run}"
    expected = [
        Expected(
            "track",
            "Viewed Pricing",
            anon,
            None,
            properties={
                "plan": "pro",
                "seats": 5,
                "annual": True,
                "price": 49.5,
                "tags": ["b2b", "trial"],
                "discount": None,
                "nested": {"coupon": "SPRING", "ratio": 0.25},
                "label": "Prix réduit ✓",
            },
            context={"locale": "fr-FR", "page": {"path": "/pricing", "title": "Pricing"}},
            timestamp=PAST,
        ),
        Expected(
            "identify",
            None,
            anon,
            user,
            traits={"email": "ada@acme.io", "name": "Ada Lovelace", "age": 36},
        ),
        Expected(
            "track",
            "Signed Up",
            anon,
            user,
            properties={"source": "ads", "campaign": "q2"},
        ),
        Expected(
            "group",
            None,
            None,
            user,
            group_id=account,
            traits={"name": "Acme Inc", "employees": 250, "industry": "Retail"},
        ),
        Expected(
            "page",
            "Install Guide",
            anon,
            None,
            properties={"url": "https://docs.example/install", "path": "/install"},
            context={"userAgent": "Mozilla/5.0 (X11; Linux x86_64)"},
        ),
    ]
    for exp in expected:
        ids: dict[str, Any] = {}
        if exp.anonymous_id is not None:
            ids["anonymous_id"] = exp.anonymous_id
        if exp.user_id is not None:
            ids["user_id"] = exp.user_id
        if explicit_ids:
            exp.message_id = f"{exp.type}-{uuid.uuid4()}"
            ids["message_id"] = exp.message_id
        if exp.timestamp is not None:
            ids["timestamp"] = exp.timestamp
        # The SDKs write context.library into the dict they are given: pass a copy.
        context = orjson.loads(orjson.dumps(exp.context))
        if exp.type == "track":
            result = sdk.track(event=exp.event, properties=exp.properties, context=context, **ids)
        elif exp.type == "identify":
            result = sdk.identify(traits=exp.traits, context=context, **ids)
        elif exp.type == "group":
            result = sdk.group(group_id=exp.group_id, traits=exp.traits, context=context, **ids)
        else:
            result = sdk.page(name=exp.event, properties=exp.properties, context=context, **ids)
        if not explicit_ids:
            success, sent = result
            assert success, f"the SDK did not accept the {exp.type} call"
            exp.message_id = sent["messageId"]
    return expected


def _assert_delivered(target: Collector, expected: list[Expected], library_version: str) -> None:
    """Each expected call is on the raw topic exactly once, with its fields intact."""
    records = _read_topic(target.bootstrap, target.settings.topic("raw"), len(expected))
    dead = _read_topic(target.bootstrap, target.settings.topic("dead_letter"), 0)
    assert dead == [], f"the collector dead-lettered SDK events: {dead}"
    counts = Counter(value["event_id"] for _, value in records)
    assert counts == Counter(exp.message_id for exp in expected), records
    by_id = {value["event_id"]: (key, value) for key, value in records}
    for exp in expected:
        key, record = by_id[exp.message_id]
        what = f"{exp.type} {exp.message_id}: {record}"
        assert key == (exp.anonymous_id or exp.user_id).encode(), what
        assert record["type"] == exp.type, what
        assert record["event"] == exp.event, what
        assert record["anonymous_id"] == exp.anonymous_id, what
        assert record["user_id"] == exp.user_id, what
        assert record["group_id"] == exp.group_id, what
        assert record["properties"] == exp.properties, what
        assert record["traits"] == exp.traits, what
        assert record["context"]["library"] == {
            "name": LIBRARY_NAME,
            "version": library_version,
        }, what
        for name, value in exp.context.items():
            assert record["context"][name] == value, what
        assert "flags" not in record, what
        received = parse_ts(record["received_at"])
        assert received is not None, what
        assert abs(received - datetime.now(UTC)) < timedelta(minutes=1), what
        assert parse_ts(record["sent_at"]) is not None, what
        stamped = parse_ts(record["timestamp"])
        original = parse_ts(record["original_timestamp"])
        assert stamped is not None and original is not None, what
        if exp.timestamp is not None:
            assert original == exp.timestamp, what
        # Same clock on both sides: the skew correction moves the time by milliseconds.
        assert abs(stamped - original) < timedelta(seconds=5), what


class _Errors(list[str]):
    """An SDK ``on_error`` callback that remembers what failed."""

    def __call__(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        self.append(f"{error!r} for {[m.get('type') for m in batch]}")


@pytest.mark.parametrize("gzip", [False, True], ids=["json", "gzip"])
def test_segment_client_batched(collector: Collector, gzip: bool) -> None:
    errors = _Errors()
    client = SegmentClient(
        WRITE_KEY,
        host=collector.url,
        gzip=gzip,
        max_retries=0,
        on_error=errors,
        upload_interval=0.1,
    )
    try:
        expected = _scenario(client, explicit_ids=False)
        client.flush()
    finally:
        client.shutdown()
    assert errors == []
    _assert_delivered(collector, expected, SEGMENT_VERSION)


def test_segment_client_sync_mode_gzip(collector: Collector) -> None:
    # sync_mode posts each call as its own batch and raises on any non-2xx answer.
    client = SegmentClient(
        WRITE_KEY, host=collector.url + "/", sync_mode=True, gzip=True, max_retries=0
    )
    expected = _scenario(client, explicit_ids=True)
    _assert_delivered(collector, expected, SEGMENT_VERSION)


def test_rudder_module_api_gzip(collector: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    # RudderStack's documented set-up: module-level write_key and dataPlaneUrl; gzip is its
    # default. monkeypatch restores the module (and drops its default client) afterwards.
    errors = _Errors()
    monkeypatch.setattr(rudder_analytics, "write_key", WRITE_KEY)
    monkeypatch.setattr(rudder_analytics, "dataPlaneUrl", collector.url)
    monkeypatch.setattr(rudder_analytics, "max_retries", 0)
    monkeypatch.setattr(rudder_analytics, "on_error", errors)
    monkeypatch.setattr(rudder_analytics, "default_client", None)
    try:
        expected = _scenario(rudder_analytics, explicit_ids=True)
        rudder_analytics.flush()
    finally:
        rudder_analytics.shutdown()
    assert rudder_analytics.default_client is not None
    assert rudder_analytics.default_client.gzip is True
    assert errors == []
    _assert_delivered(collector, expected, RUDDER_VERSION)


def test_rudder_client_sync_mode_json(collector: Collector) -> None:
    client = RudderClient(WRITE_KEY, host=collector.url, sync_mode=True, gzip=False, max_retries=0)
    expected = _scenario(client, explicit_ids=False)
    _assert_delivered(collector, expected, RUDDER_VERSION)
