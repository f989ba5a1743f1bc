"""Through `autocap up`: a resent event_id is counted once, across a restart of every
process; distinct ids with identical content are both kept; skewed clocks are corrected."""

from __future__ import annotations

import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import duckdb

from pipeline.timeutil import format_ts
from tests.conftest import wait_until
from tests.integration.test_up import Up


def _message(event_id: str, **extra: object) -> dict[str, object]:
    return {
        "type": "track",
        "event": "Checkout",
        "anonymousId": "dedup-anon-1",
        "properties": {"plan": "pro", "amount": 42},
        "messageId": event_id,
        **extra,
    }


def _query(up: Up, sql: str, *params: object) -> list[tuple]:
    con = duckdb.connect(str(up.settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _landed(up: Up, event_id: str) -> None:
    # Same anonymousId, so same partition: once this one is in, everything sent before it is.
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    assert up.post(_message(sentinel)).status_code == 200
    wait_until(lambda: up.count(f"event_id = '{sentinel}'") == 1, 30, interval=0.2, what=sentinel)


def _stop(up: Up) -> None:
    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(30) == 0, up.output


def test_resent_event_id_is_counted_once_even_after_a_restart(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings()
    dup, twin_a, twin_b = (f"{name}-{uuid.uuid4().hex}" for name in ("dup", "twin-a", "twin-b"))
    # The client's clock is 3 days and 250 ms fast; it sent the batch 7.5 s after the event.
    skew, delay = timedelta(days=3, milliseconds=250), timedelta(milliseconds=7_500)
    up = Up(settings)
    try:
        up.wait_up()
        happened = datetime.now(UTC) - delay
        skewed = _message(
            dup,
            timestamp=format_ts(happened + skew),
            sentAt=format_ts(happened + skew + delay),
        )
        sent = time.monotonic()
        assert up.post(skewed).status_code == 200
        # Identical content, different ids: two events.
        assert up.post(_message(twin_a), _message(twin_b)).status_code == 200
        _landed(up, dup)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - sent)))
        assert up.post(skewed).status_code == 200  # resent after 1 s
        _landed(up, dup)
        assert up.count(f"event_id = '{dup}'") == 1
        _stop(up)

        up = Up(settings)  # every process restarts; the embedded broker starts empty
        up.wait_up()
        assert up.post(skewed).status_code == 200  # resent after the restart
        _landed(up, dup)
        assert up.count(f"event_id = '{dup}'") == 1
        assert up.count(f"event_id IN ('{twin_a}', '{twin_b}')") == 2
        # The lake keeps every copy it was sent; the events view shows one.
        (copies,) = _query(up, "SELECT count(*) FROM lake_events_raw WHERE event_id = ?", dup)[0]
        assert copies >= 2, copies
        # The stored time is the event's time on the collector's clock, to the millisecond:
        # received_at (of the copy kept, the first) minus the delay the client reported.
        received, stored = _query(
            up,
            "SELECT strftime(received_at, '%Y-%m-%dT%H:%M:%S.%gZ'),"
            " strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%gZ') FROM events WHERE event_id = ?",
            dup,
        )[0]
        received_at = datetime.fromisoformat(received)
        assert stored == format_ts(received_at - delay), (received, stored)
        assert abs(received_at - delay - happened) < timedelta(seconds=5)  # transit time only
        _stop(up)
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait()
