import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.http.normalize import Receipt, normalize
from pipeline.errors import InvalidEvent
from pipeline.timeutil import format_ts

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def track(**extra: object) -> dict[str, object]:
    return {"type": "track", "event": "Signed Up", "anonymousId": "a-1", **extra}


def test_message_id_becomes_event_id_and_receipt_time_is_ours() -> None:
    rec = normalize(track(messageId="m-1"), Receipt.at(NOW))
    assert rec["event_id"] == "m-1"
    assert rec["received_at"] == "2026-11-23T12:00:00.000Z"
    assert rec["timestamp"] == rec["received_at"]  # no client timestamp: receipt time


def test_missing_message_id_gets_a_uuid7_from_receipt_time() -> None:
    rec = normalize(track(), Receipt.at(NOW))
    parsed = uuid.UUID(rec["event_id"])
    assert parsed.version == 7
    assert parsed.int >> 80 == int(NOW.timestamp() * 1000)


def test_clock_skew_is_corrected_with_sent_at() -> None:
    # The client clock runs 2 hours fast; the event happened 5 s before it was sent.
    client_now = NOW + timedelta(hours=2)
    msg = track(timestamp=format_ts(client_now - timedelta(seconds=5)))
    rec = normalize(msg, Receipt.at(NOW, format_ts(client_now)))
    assert rec["timestamp"] == format_ts(NOW - timedelta(seconds=5))
    assert rec["sent_at"] == format_ts(client_now)
    assert "flags" not in rec


@pytest.mark.parametrize(
    "stamp", ["not a time", "2026-13-45T00:00:00Z", 12345, "0001-01-01T00:00:00+05:00"]
)
def test_unparseable_timestamp_falls_back_and_is_flagged(stamp: object) -> None:
    rec = normalize(track(timestamp=stamp), Receipt.at(NOW))
    assert rec["timestamp"] == format_ts(NOW)
    assert rec["flags"] == ["timestamp_fallback"]


def test_far_future_timestamp_falls_back() -> None:
    rec = normalize(track(timestamp=format_ts(NOW + timedelta(hours=24))), Receipt.at(NOW))
    assert rec["timestamp"] == format_ts(NOW)
    assert rec["flags"] == ["timestamp_clamped"]
    ok = normalize(track(timestamp=format_ts(NOW + timedelta(hours=22))), Receipt.at(NOW))
    assert "flags" not in ok


@pytest.mark.parametrize("junk", ["null", "undefined", "0", "anonymous", "Guest", "", "   "])
def test_junk_identifiers_are_refused(junk: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(track(anonymousId=junk), Receipt.at(NOW))
    assert info.value.field == "anonymousId"
    assert info.value.rule == ("minLength" if junk == "" else "junk_id")


@pytest.mark.parametrize(
    ("message", "field", "rule"),
    [
        ([1, 2], "message", "type"),
        ({"type": "bogus", "anonymousId": "a"}, "type", "enum"),
        ({"type": "track", "anonymousId": "a"}, "event", "required"),
        ({"type": "page"}, "anonymousId", "required"),
        ({"type": "page", "userId": {"a": 1}}, "userId", "type"),
        ({"type": "page", "userId": "u", "properties": [1]}, "properties", "type"),
        ({"type": "page", "userId": "u", "messageId": 5}, "messageId", "type"),
    ],
)
def test_invalid_messages_name_field_and_rule(message: object, field: str, rule: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(message, Receipt.at(NOW))
    assert (info.value.field, info.value.rule) == (field, rule)


def test_single_message_endpoint_checks_type() -> None:
    assert (
        normalize({"userId": "u"}, Receipt.at(NOW), default_type="identify")["type"] == "identify"
    )
    with pytest.raises(InvalidEvent, match="sent to /v1/identify"):
        normalize(
            {"type": "track", "event": "x", "userId": "u"}, Receipt.at(NOW), default_type="identify"
        )


def test_numeric_user_ids_become_strings() -> None:
    assert normalize({"type": "identify", "userId": 42}, Receipt.at(NOW))["user_id"] == "42"


def test_absurd_sent_at_falls_back_instead_of_overflowing() -> None:
    msg = track(timestamp="0001-01-01T00:00:00Z")
    rec = normalize(msg, Receipt.at(NOW, "9999-12-31T00:00:00Z"))
    assert rec["timestamp"] == format_ts(NOW) and rec["flags"] == ["timestamp_fallback"]


@settings(max_examples=300, deadline=None)
@given(
    skew_ms=st.integers(-7 * 86_400_000, 7 * 86_400_000),
    delay_ms=st.integers(0, 30_000),
    at_ms=st.integers(0, 86_400_000),
)
def test_any_client_clock_skew_gives_the_exact_event_time(
    skew_ms: int, delay_ms: int, at_ms: int
) -> None:
    # The event happens at `happened`; the client's clock is off by `skew`; the batch is
    # sent `delay` later and arrives at once. Stored time = the true time, to the ms.
    happened = NOW + timedelta(milliseconds=at_ms)
    skew, delay = timedelta(milliseconds=skew_ms), timedelta(milliseconds=delay_ms)
    client_stamp, client_sent = happened + skew, happened + skew + delay
    rec = normalize(
        track(timestamp=format_ts(client_stamp)),
        Receipt.at(happened + delay, format_ts(client_sent)),
    )
    assert rec["timestamp"] == format_ts(happened)
    assert "flags" not in rec


@settings(max_examples=200, deadline=None)
@given(ahead_ms=st.integers(23 * 3_600_000 + 1, 7 * 86_400_000))
def test_corrected_times_over_23h_ahead_are_clamped_and_flagged(ahead_ms: int) -> None:
    # No sentAt to correct with: the client's clock alone says the event is in the future.
    stamp = format_ts(NOW + timedelta(milliseconds=ahead_ms))
    rec = normalize(track(timestamp=stamp), Receipt.at(NOW))
    assert rec["timestamp"] == format_ts(NOW)
    assert rec["flags"] == ["timestamp_clamped"]
    assert rec["original_timestamp"] == stamp  # what the client said is kept
