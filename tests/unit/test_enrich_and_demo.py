import random
from datetime import UTC, datetime

import orjson
import pytest

from collectors.http.normalize import Receipt, normalize
from pipeline.demo.traffic import journey
from pipeline.errors import InvalidEvent
from pipeline.sessions import SessionRules, session_id_for
from pipeline.stream.enrich import decode_raw, process

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_process_sets_person_account_and_session() -> None:
    rules = SessionRules()
    raw = normalize(
        {"type": "group", "anonymousId": "a", "userId": "u", "groupId": "acme"}, Receipt.at(NOW)
    )
    _, session, out = process(None, None, decode_raw(orjson.dumps(raw)), rules)
    assert (out.enriched["person_id"], out.enriched["account_id"]) == ("u:u", "acme")
    assert out.enriched["session_id"] == session_id_for("a", raw["event_id"])
    assert out.enriched["session_seq"] == 1 and session is not None
    assert [r["kind"] for r in out.identities] == ["link"]
    anon = normalize({"type": "page", "anonymousId": "b"}, Receipt.at(NOW))
    _, _, out = process(None, None, decode_raw(orjson.dumps(anon)), rules)
    assert out.enriched["person_id"] == "a:b" and out.identities == []


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (b"", "value"),
        (b"{", "value"),
        (b"[]", "value"),
        (b'{"type":"track","timestamp":"t","received_at":"t"}', "event_id"),
        (
            b'{"event_id":"e","type":"track","timestamp":"2026-01-01T00:00:00Z",'
            b'"received_at":"2026-01-01T00:00:00Z"}',
            "anonymous_id",
        ),
        (b'{"event_id":"e","type":"track","timestamp":"t","received_at":"t"}', "timestamp"),
    ],
)
def test_decode_raw_names_what_is_wrong(value: bytes, field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_raw(value)
    assert info.value.field == field


def test_demo_journeys_are_valid_segment_messages() -> None:
    rng = random.Random(7)
    kinds = set()
    for _ in range(200):
        messages = journey(rng, NOW)
        assert messages
        for message in messages:
            record = normalize(message, Receipt.at(NOW))
            kinds.add(record["event"] or record["type"])
    assert {"$pageview", "$click", "identify", "group", "Order Completed"} <= kinds


def test_replayed_events_get_their_first_answer_and_change_nothing() -> None:
    rules = SessionRules()
    messages = [
        {
            "type": "page",
            "anonymousId": "d",
            "messageId": "p1",
            "timestamp": "2026-11-23T09:00:00Z",
        },
        {
            "type": "identify",
            "anonymousId": "d",
            "userId": "alice",
            "messageId": "i1",
            "timestamp": "2026-11-23T09:01:00Z",
        },
        {
            "type": "identify",
            "anonymousId": "d",
            "userId": "bob",
            "messageId": "i2",
            "timestamp": "2026-11-23T12:00:00Z",
        },
    ]
    records = [decode_raw(orjson.dumps(normalize(m, Receipt.at(NOW)))) for m in messages]
    identity, session = None, None
    first = []
    for record in records:
        identity, session, out = process(identity, session, record, rules)
        first.append(out)
    for record, original in zip(records, first, strict=True):  # the crash replay
        again_identity, again_session, again = process(identity, session, record, rules)
        assert (again_identity, again_session) == (identity, session)
        assert again.enriched == original.enriched
        assert again.identities == [] and again.sessions == []
