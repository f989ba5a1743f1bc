"""The collector's HTTP behaviour, in-process, with a recording producer (no Kafka)."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from collectors.http.app import create_app
from collectors.http.producer import Record
from pipeline.errors import BrokerUnavailable
from pipeline.settings import Settings, WriteKey
from tests.conftest import wait_until

KEY = "wk_unit_key_123"
KEY2 = "wk_server_side_key"
MAX_BODY = 64 * 1024


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: dict[str, list[Record]] = {}
        self.fail = False
        self.started = False

    async def start(self) -> None:
        if self.fail:
            raise BrokerUnavailable("broker down")
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def send_all(self, topic: str, records: Sequence[Record]) -> None:
        if self.fail:
            raise BrokerUnavailable("broker down")
        self.sent.setdefault(topic, []).extend(records)

    def values(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for _, v in self.sent.get(topic, [])]


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def build(
    tmp_path: Path, producer: RecordingProducer, clock: Clock | None = None, **overrides: Any
) -> TestClient:
    values: dict[str, Any] = {
        "topic_prefix": "u",
        "data_dir": tmp_path,
        "write_keys": (WriteKey(KEY, ("https://shop.example",)), WriteKey(KEY2)),
        "max_body_bytes": MAX_BODY,
        "rate_limit_key_eps": 0,
        "rate_limit_ip_eps": 0,
        "ip_mode": "full",
        "produce_timeout_s": 0.5,
    }
    values.update(overrides)
    app = create_app(Settings(**values), producer, CollectorRegistry(), clock=clock or Clock())
    return TestClient(app, client=("203.0.113.77", 5555))


@pytest.fixture
def client(tmp_path: Path, producer: RecordingProducer) -> Iterator[TestClient]:
    with build(tmp_path, producer) as c:
        yield c


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def batch(*messages: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"batch": list(messages), **extra})


EVENT = {"type": "track", "event": "Clicked", "anonymousId": "anon-1", "messageId": "m1"}


def test_batch_with_basic_auth_reaches_raw_topic(
    client: TestClient, producer: RecordingProducer
) -> None:
    resp = client.post("/v1/batch", content=batch(EVENT), headers=auth())
    assert resp.status_code == 200 and resp.json() == {"success": True}
    key, _ = producer.sent["u.raw"][0]
    assert key == b"anon-1"
    assert producer.values("u.raw")[0]["event_id"] == "m1"
    assert producer.started


def test_write_key_in_body_and_text_plain(client: TestClient, producer: RecordingProducer) -> None:
    # What navigator.sendBeacon sends: text/plain, key in the body.
    resp = client.post(
        "/v1/batch", content=batch(EVENT, writeKey=KEY), headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 200
    assert len(producer.sent["u.raw"]) == 1


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({}, batch(EVENT), "missing"),
        (auth("wk_not_a_known_key"), batch(EVENT), "unknown"),
        ({"Authorization": "Basic !!!"}, batch(EVENT), "malformed"),
        ({}, batch(EVENT, writeKey="wk_wrong_wrong"), "unknown"),
    ],
)
def test_bad_write_keys_get_401_and_nothing_is_sent(
    client: TestClient,
    producer: RecordingProducer,
    headers: dict[str, str],
    body: bytes,
    reason: str,
) -> None:
    resp = client.post("/v1/batch", content=body, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["reason"] == reason
    assert producer.sent == {}


def test_invalid_events_are_dead_lettered_and_valid_ones_go_through(
    client: TestClient, producer: RecordingProducer
) -> None:
    bad = {"type": "track", "anonymousId": "undefined", "event": "x"}
    resp = client.post("/v1/batch", content=batch(EVENT, bad), headers=auth())
    assert resp.status_code == 200
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["errors"] == [
        {
            "index": 1,
            "field": "anonymousId",
            "reason": "junk_id",
            "message": body["errors"][0]["message"],
        }
    ]
    dead = producer.values("u.dead_letter")[0]
    assert dead["stage"] == "collector" and dead["reason"] == "junk_id"
    assert dead["write_key"] == KEY
    assert orjson.loads(dead["payload"]) == bad
    assert len(producer.sent["u.raw"]) == 1


def test_gzip_bodies(client: TestClient, producer: RecordingProducer) -> None:
    headers = {**auth(), "Content-Encoding": "gzip"}
    assert (
        client.post("/v1/batch", content=gzip.compress(batch(EVENT)), headers=headers).status_code
        == 200
    )
    resp = client.post("/v1/batch", content=b"not gzip at all", headers=headers)
    assert resp.status_code == 400 and resp.json()["error"]["reason"] == "gzip"
    truncated = gzip.compress(batch(EVENT))[:-12]
    assert client.post("/v1/batch", content=truncated, headers=headers).status_code == 400


def test_gzip_bomb_is_refused_without_inflating(client: TestClient) -> None:
    bomb = gzip.compress(b"0" * (50 * MAX_BODY))  # ~75 KB on the wire
    assert len(bomb) < MAX_BODY
    resp = client.post("/v1/batch", content=bomb, headers={**auth(), "Content-Encoding": "gzip"})
    assert resp.status_code == 413


def test_oversized_body_is_413(client: TestClient) -> None:
    resp = client.post("/v1/batch", content=b"x" * (MAX_BODY + 1), headers=auth())
    assert resp.status_code == 413 and resp.json()["error"]["field"] == "body"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1,2]", "body"),
        (orjson.dumps({"batch": {"a": 1}}), "batch"),
        (b"\xff\xfe", "body"),
    ],
)
def test_malformed_bodies_are_400_naming_the_field(
    client: TestClient, body: bytes, field: str
) -> None:
    resp = client.post("/v1/batch", content=body, headers=auth())
    assert resp.status_code == 400
    assert resp.json()["error"]["field"] == field


def test_single_message_endpoints(client: TestClient, producer: RecordingProducer) -> None:
    resp = client.post(
        "/v1/identify", json={"userId": "u-9", "traits": {"plan": "pro"}}, headers=auth()
    )
    assert resp.status_code == 200
    rec = producer.values("u.raw")[0]
    assert (rec["type"], rec["user_id"], rec["traits"]) == ("identify", "u-9", {"plan": "pro"})


def test_kafka_down_spools_and_answers_200_then_drains_in_order(
    tmp_path: Path, producer: RecordingProducer
) -> None:
    producer.fail = True
    with build(tmp_path, producer) as c:
        for i in range(3):
            resp = c.post(
                "/v1/batch", content=batch({**EVENT, "messageId": f"s{i}"}), headers=auth()
            )
            assert resp.status_code == 200
        assert producer.sent == {}
        ready = c.get("/readyz")  # still accepting (the spool has room), but Kafka is not
        assert ready.status_code == 503 and ready.json()["reason"].endswith("spooling")
        assert any((tmp_path / "spool").rglob("*.spool"))
        producer.fail = False
        wait_until(lambda: len(producer.sent.get("u.raw", [])) == 3, 10, what="drain")
        assert [v["event_id"] for v in producer.values("u.raw")] == ["s0", "s1", "s2"]
        wait_until(
            lambda: not any((tmp_path / "spool").rglob("*.spool")),
            5,
            what="drained segments deleted",
        )
        metrics = c.get("/metrics").text
        assert "autocap_collector_events_spooled_total 3.0" in metrics
        assert "autocap_collector_events_drained_total 3.0" in metrics


def test_spool_readiness_stays_ready_while_the_spool_has_room(
    tmp_path: Path, producer: RecordingProducer
) -> None:
    producer.fail = True
    with build(tmp_path, producer, readiness="spool") as c:
        assert c.post("/v1/batch", content=batch(EVENT), headers=auth()).status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["spooling"] is True


def test_spool_full_is_503_and_unready(tmp_path: Path, producer: RecordingProducer) -> None:
    producer.fail = True
    with build(tmp_path, producer, spool_max_bytes=2048) as c:
        big = {**EVENT, "properties": {"blob": "x" * 900}}
        assert c.post("/v1/batch", content=batch(big), headers=auth()).status_code == 200
        resp = c.post("/v1/batch", content=batch(big), headers=auth())
        assert resp.status_code == 503 and resp.headers["retry-after"] == "30"
        assert c.get("/readyz").status_code == 503
    assert c.get("/healthz").status_code == 200


def test_restart_drains_what_was_spooled(tmp_path: Path) -> None:
    down = RecordingProducer()
    down.fail = True
    with build(tmp_path, down) as c:
        assert c.post("/v1/batch", content=batch(EVENT), headers=auth()).status_code == 200
    up = RecordingProducer()
    with build(tmp_path, up):
        wait_until(lambda: len(up.sent.get("u.raw", [])) == 1, 10, what="drain after restart")


def test_metrics_count_requests(client: TestClient) -> None:
    client.post("/v1/batch", content=batch(EVENT), headers=auth())
    text = client.get("/metrics").text
    assert 'autocap_collector_requests_total{route="batch",status="200"} 1.0' in text
    assert "autocap_collector_events_accepted_total 1.0" in text


def test_unknown_routes_and_methods(client: TestClient) -> None:
    assert client.get("/v1/batch").status_code == 405
    assert client.post("/v2/batch", content=b"{}").status_code == 404


def test_cors_preflight_only_for_configured_origins(client: TestClient) -> None:
    ok = client.options(
        "/v1/batch",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in ok.headers["access-control-allow-methods"]
    evil = client.options(
        "/v1/batch",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
    wrong_method = client.options(
        "/v1/batch",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "DELETE"},
    )
    assert wrong_method.status_code == 403


def test_cors_origin_checked_per_write_key(client: TestClient, producer: RecordingProducer) -> None:
    resp = client.post(
        "/v1/batch",
        content=batch(EVENT, writeKey=KEY),
        headers={"Origin": "https://shop.example", "Content-Type": "text/plain"},
    )
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "https://shop.example"
    # KEY2 has no browser origins: a page cannot use it.
    resp = client.post(
        "/v1/batch", content=batch(EVENT, writeKey=KEY2), headers={"Origin": "https://shop.example"}
    )
    assert resp.status_code == 403 and resp.json()["error"]["field"] == "origin"
    assert len(producer.sent["u.raw"]) == 1


def test_rate_limit_per_write_key_with_retry_after(
    tmp_path: Path, producer: RecordingProducer
) -> None:
    clock = Clock()
    with build(tmp_path, producer, clock, rate_limit_key_eps=10, rate_limit_burst_s=1) as c:
        ten = batch(*({**EVENT, "messageId": f"r{i}"} for i in range(10)))
        assert c.post("/v1/batch", content=ten, headers=auth()).status_code == 200
        limited = c.post("/v1/batch", content=batch(EVENT), headers=auth())
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
        # Another key is unaffected.
        assert c.post("/v1/batch", content=batch(EVENT), headers=auth(KEY2)).status_code == 200
        clock.now += 0.5  # five tokens back
        assert c.post("/v1/batch", content=batch(EVENT), headers=auth()).status_code == 200
    assert len(producer.sent["u.raw"]) == 12


def test_rate_limit_per_ip(tmp_path: Path, producer: RecordingProducer) -> None:
    with build(tmp_path, producer, Clock(), rate_limit_ip_eps=2, rate_limit_burst_s=1) as c:
        assert c.post("/v1/batch", content=batch(EVENT, EVENT), headers=auth()).status_code == 200
        assert c.post("/v1/batch", content=batch(EVENT), headers=auth(KEY2)).status_code == 429


@pytest.mark.parametrize(
    ("mode", "stored"), [("full", "203.0.113.77"), ("truncate", "203.0.113.0"), ("drop", None)]
)
def test_client_ip_is_kept_only_as_configured(
    tmp_path: Path, producer: RecordingProducer, mode: str, stored: str | None
) -> None:
    with build(tmp_path, producer, ip_mode=mode) as c:
        spoofed = {**EVENT, "context": {"ip": "198.51.100.23"}}
        c.post("/v1/batch", content=batch(EVENT, spoofed), headers=auth())
    first, second = producer.values("u.raw")
    assert first["context"].get("ip") == stored
    assert (
        second["context"].get("ip")
        == {"full": "198.51.100.23", "truncate": "198.51.100.0", "drop": None}[mode]
    )


def test_forwarded_for_only_when_trusted(tmp_path: Path, producer: RecordingProducer) -> None:
    with build(tmp_path, producer, trust_forwarded_for=True) as c:
        c.post(
            "/v1/batch",
            content=batch(EVENT),
            headers={**auth(), "X-Forwarded-For": "198.51.100.1, 192.0.2.9"},
        )
    with build(tmp_path, producer) as c:
        c.post(
            "/v1/batch", content=batch(EVENT), headers={**auth(), "X-Forwarded-For": "192.0.2.9"}
        )
    assert [v["context"]["ip"] for v in producer.values("u.raw")] == ["192.0.2.9", "203.0.113.77"]


def test_limits_are_configurable(tmp_path: Path, producer: RecordingProducer) -> None:
    with build(
        tmp_path,
        producer,
        max_batch_events=2,
        max_event_bytes=600,
        max_property_depth=3,
        max_string_length=100,
    ) as c:
        three = batch(EVENT, EVENT, EVENT)
        assert c.post("/v1/batch", content=three, headers=auth()).status_code == 413
        resp = c.post(
            "/v1/batch",
            headers=auth(),
            content=batch(
                {**EVENT, "properties": {"a": {"b": {"c": 1}}}},
                {**EVENT, "properties": {"s": "x" * 101}},
            ),
        )
        assert [e["reason"] for e in resp.json()["errors"]] == ["max_depth", "max_length"]
        resp = c.post(
            "/v1/batch",
            headers=auth(),
            content=batch({**EVENT, "properties": {f"k{i}": "v" * 90 for i in range(5)}}),
        )
        assert resp.json()["errors"][0]["reason"] == "too_large"


def test_authenticated_garbage_is_dead_lettered(
    client: TestClient, producer: RecordingProducer
) -> None:
    assert client.post("/v1/batch", content=b"{oops", headers=auth()).status_code == 400
    assert producer.values("u.dead_letter")[0]["payload"] == "{oops"
    assert client.post("/v1/batch", content=b"{oops").status_code == 401
    assert len(producer.sent["u.dead_letter"]) == 1  # unauthenticated junk reaches nothing


def test_openapi_document_is_served_and_matches_the_repo(client: TestClient) -> None:
    from collectors.http.openapi import build_openapi, openapi_path

    served = client.get("/openapi.json").json()
    assert served == build_openapi()
    assert orjson.loads(Path(openapi_path()).read_bytes()) == served, (
        "schemas/openapi.json is stale: run `autocap openapi > schemas/openapi.json`"
    )
    app_paths = {r.path for r in client.app.routes if r.path.startswith("/v1/")}  # type: ignore[attr-defined]
    assert app_paths == {p for p in served["paths"] if p.startswith("/v1/")}


def test_access_log_is_one_json_line_per_request(
    tmp_path: Path, producer: RecordingProducer
) -> None:
    lines: list[bytes] = []
    settings = Settings(
        topic_prefix="u", data_dir=tmp_path, write_keys=(WriteKey(KEY),), ip_mode="truncate"
    )
    app = create_app(settings, producer, CollectorRegistry(), access_log=lines.append)
    with TestClient(app, client=("203.0.113.77", 5555)) as c:
        c.post("/v1/batch", content=batch(EVENT, {"type": "page"}), headers=auth())
        c.post("/v1/batch", content=batch(EVENT), headers=auth("wk_nobody_knows"))
    ok, refused = (orjson.loads(line) for line in lines)
    assert ok["status"] == 200 and ok["events"] == 1 and ok["rejected"] == 1
    assert ok["key"] == KEY[:8] and ok["ip"] == "203.0.113.0" and ok["via"] == "kafka"
    assert ok["bytes"] > 0 and ok["ms"] >= 0
    assert refused["status"] == 401 and refused["error"] == "unknown" and refused["key"] is None


def test_garbage_bodies_are_rate_limited_too(tmp_path: Path, producer: RecordingProducer) -> None:
    with build(tmp_path, producer, Clock(), rate_limit_key_eps=2, rate_limit_burst_s=1) as c:
        statuses = [
            c.post("/v1/batch", content=b"{junk", headers=auth()).status_code for _ in range(4)
        ]
    assert statuses == [400, 400, 429, 429]
    assert len(producer.sent["u.dead_letter"]) == 2
