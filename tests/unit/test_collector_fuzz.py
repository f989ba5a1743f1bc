"""Hostile and random input against the collector, in-process: never a 5xx, never a crash.

Property-based (hypothesis) over bodies, messages and headers, plus schemathesis driven by
the OpenAPI document the collector serves.
"""

from __future__ import annotations

import base64
import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import orjson
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from collectors.http.app import create_app
from pipeline.settings import Settings, WriteKey
from tests.unit.test_collector_app import KEY, RecordingProducer

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
DOCUMENTED = {200, 400, 401, 403, 404, 405, 413, 415, 429}


def _app(max_body_bytes: int = 64 * 1024) -> Any:
    settings = Settings(
        topic_prefix="f",
        data_dir=Path(tempfile.mkdtemp(prefix="autocap-fuzz-")),
        write_keys=(WriteKey(KEY, ("https://shop.example",)),),
        max_body_bytes=max_body_bytes,
        rate_limit_key_eps=0,
        rate_limit_ip_eps=0,
    )
    return create_app(settings, RecordingProducer(), CollectorRegistry())


CLIENT = TestClient(_app())
CLIENT.__enter__()  # run the lifespan once for the whole module

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_value = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)
message = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "page", "identify", "group", "alias", "bogus"])},
    optional={
        "event": json_leaf,
        "anonymousId": json_leaf,
        "userId": json_leaf,
        "groupId": json_leaf,
        "messageId": json_leaf,
        "timestamp": json_leaf,
        "properties": json_value,
        "context": json_value,
        "traits": json_value,
        "elements": json_value,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message | json_value, max_size=6))
def test_random_batches_are_answered_and_accounted(batch: list[Any]) -> None:
    # stdlib json: it can also write integers beyond 64 bits, which clients do send.
    resp = CLIENT.post("/v1/batch", content=json.dumps({"batch": batch}), headers=AUTH)
    assert resp.status_code in DOCUMENTED, resp.text
    if resp.status_code == 200:
        body = resp.json()
        assert body.get("accepted", len(batch)) + body.get("rejected", 0) == len(batch)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048), st.sampled_from(["identity", "gzip", "br", ""]), st.booleans())
def test_random_bytes_never_5xx(body: bytes, encoding: str, authed: bool) -> None:
    headers = {"Content-Encoding": encoding, **(AUTH if authed else {})}
    resp = CLIENT.post("/v1/batch", content=body, headers=headers)
    assert resp.status_code in DOCUMENTED
    assert resp.json()["success"] is False


header_text = st.text(
    st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=300
)


@settings(max_examples=100, deadline=None)
@given(header_text, header_text)
def test_random_auth_headers_never_5xx(authorization: str, origin: str) -> None:
    # Raw UTF-8 bytes on the wire, as a hostile client would send them.
    headers = {"Authorization": authorization.encode(), "Origin": origin.encode()}
    resp = CLIENT.post("/v1/track", json={"event": "x", "anonymousId": "a"}, headers=headers)
    assert resp.status_code in {401, 403}


def test_hostile_corpus() -> None:
    deep = "[" * 10_000 + "]" * 10_000
    cases: list[tuple[bytes, dict[str, str], int]] = [
        (b'{"batch": [{"type": "track", "event": "\xff\xfe", "anonymousId": "a"}]}', AUTH, 400),
        (b'{"batch": [{"type":"track","event":"x","anonymousId":"\\ud800"}]}', AUTH, 400),
        (deep.encode(), AUTH, 400),
        (
            orjson.dumps(
                {
                    "batch": [
                        {
                            "type": "track",
                            "event": "x",
                            "anonymousId": "a",
                            "properties": {"p": "\x00" * 10},
                        }
                    ]
                }
            ),
            AUTH,
            200,
        ),
        (gzip.compress(b'{"batch": []}')[:-5], {**AUTH, "Content-Encoding": "gzip"}, 400),
        (b'{"batch": []}', {"Authorization": "Basic " + "A" * 5000}, 401),
        (b'{"batch": [], "writeKey": "\\u0000"}', {}, 401),
        (b'{"batch": [], "writeKey": "' + b"k" * 10_000 + b'"}', {}, 401),
        (b'{"batch": [], "writeKey": "cl\\u00e9"}', {}, 401),
        (b'{"batch": []}', {}, 401),
        (b"", AUTH, 400),
    ]
    for body, headers, status in cases:
        resp = CLIENT.post("/v1/batch", content=body, headers=headers)
        assert resp.status_code == status, (body[:60], resp.status_code, resp.text[:200])


# A separate app: schemathesis drives it on its own event loop.
# (its bodies stay under a larger cap, so schema verdicts are not masked by a 413).
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(max_body_bytes=8 * 1024 * 1024))


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_openapi_contract(case: Any) -> None:
    """Generated requests (valid and not) only ever get documented answers."""
    response = case.call(headers=AUTH)
    assert response.status_code < 500, response.text
    case.validate_response(response)
