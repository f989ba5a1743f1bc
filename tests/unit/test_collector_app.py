"""The collector's HTTP behaviour, in-process, with a recording producer (no Kafka)."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from collectors.http.app import MAX_BODY_BYTES, create_app
from collectors.http.producer import Record
from pipeline.errors import BrokerUnavailable
from pipeline.settings import Settings, WriteKey

KEY = "wk_unit_key_123"


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: dict[str, list[Record]] = {}
        self.fail = False
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def send_all(self, topic: str, records: Sequence[Record]) -> None:
        if self.fail:
            raise BrokerUnavailable("broker down")
        self.sent.setdefault(topic, []).extend(records)

    def is_ready(self) -> bool:
        return not self.fail

    def values(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for _, v in self.sent.get(topic, [])]


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def client(producer: RecordingProducer) -> Iterator[TestClient]:
    settings = Settings(topic_prefix="u", write_keys=(WriteKey(KEY),))
    with TestClient(create_app(settings, producer, CollectorRegistry())) as c:
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
    bomb = gzip.compress(b"0" * (50 * MAX_BODY_BYTES))  # ~75 KB on the wire
    assert len(bomb) < MAX_BODY_BYTES
    resp = client.post("/v1/batch", content=bomb, headers={**auth(), "Content-Encoding": "gzip"})
    assert resp.status_code == 413


def test_oversized_body_is_413(client: TestClient) -> None:
    resp = client.post("/v1/batch", content=b"x" * (MAX_BODY_BYTES + 1), headers=auth())
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


def test_kafka_down_is_503_and_unready(client: TestClient, producer: RecordingProducer) -> None:
    producer.fail = True
    assert client.post("/v1/batch", content=batch(EVENT), headers=auth()).status_code == 503
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_metrics_count_requests(client: TestClient) -> None:
    client.post("/v1/batch", content=batch(EVENT), headers=auth())
    text = client.get("/metrics").text
    assert 'autocap_collector_requests_total{route="batch",status="200"} 1.0' in text
    assert "autocap_collector_events_accepted_total 1.0" in text


def test_unknown_routes_and_methods(client: TestClient) -> None:
    assert client.get("/v1/batch").status_code == 405
    assert client.post("/v2/batch", content=b"{}").status_code == 404
