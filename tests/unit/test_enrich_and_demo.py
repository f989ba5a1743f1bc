import random
from datetime import UTC, datetime

import orjson
import pytest

from collectors.http.normalize import Receipt, normalize
from pipeline.demo.traffic import journey
from pipeline.errors import InvalidEvent
from pipeline.stream.enrich import decode_raw, enrich

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_enrich_sets_person_and_account_placeholders() -> None:
    raw = normalize(
        {"type": "group", "anonymousId": "a", "userId": "u", "groupId": "acme"}, Receipt.at(NOW)
    )
    out = enrich(decode_raw(orjson.dumps(raw)))
    assert (out["person_id"], out["account_id"], out["session_id"]) == ("u", "acme", None)
    anon = enrich(
        decode_raw(orjson.dumps(normalize({"type": "page", "anonymousId": "a"}, Receipt.at(NOW))))
    )
    assert anon["person_id"] == "a"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (b"", "value"),
        (b"{", "value"),
        (b"[]", "value"),
        (b'{"type":"track","timestamp":"t","received_at":"t"}', "event_id"),
        (b'{"event_id":"e","type":"track","timestamp":"t","received_at":"t"}', "anonymous_id"),
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
