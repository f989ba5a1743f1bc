"""Sessionization rules, directly and as properties over generated event logs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.sessions import (
    SessionRules,
    SessionState,
    session_id_for,
    sessionize,
    sessionize_all,
)
from pipeline.timeutil import format_ts

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
RULES = SessionRules(inactivity=timedelta(minutes=30), max_length=timedelta(hours=24))


def ev(n: int, minutes: float, device: str = "d1", **extra: Any) -> dict[str, Any]:
    # Zero-padded ids: events at the same instant are ordered by event_id (the documented
    # tie-break), which is then also their arrival order.
    return {
        "event_id": f"e{n:04d}",
        "anonymous_id": device,
        "type": "track",
        "event": "$click",
        "timestamp": format_ts(T0 + timedelta(minutes=minutes)),
        **extra,
    }


def run(events: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    fields, sessions = {}, []
    for key, value in sessionize_all(events, RULES):
        if key == "$session":
            sessions.append(value)
        else:
            fields[key] = value
    return fields, sessions


def test_inactivity_splits_sessions_and_ids_are_deterministic() -> None:
    fields, sessions = run([ev(1, 0), ev(2, 29), ev(3, 59), ev(4, 89.5)])
    assert (
        fields["e0001"]["session_id"]
        == fields["e0002"]["session_id"]
        == session_id_for("d1", "e0001")
    )
    assert fields["e0003"]["session_id"] == fields["e0001"]["session_id"]  # a 30-minute gap: same
    assert fields["e0004"]["session_id"] == session_id_for("d1", "e0004")  # 30.5 minutes: new
    assert [s["seq"] for s in sessions] == [1, 2]
    assert sessions[0]["events"] == 3 and sessions[0]["duration_s"] == 59 * 60


def test_max_length_splits_a_never_idle_session() -> None:
    events = [ev(i, i * 20) for i in range(80)]  # every 20 min for 26 h
    _, sessions = run(events)
    assert len(sessions) == 2
    assert sessions[0]["duration_s"] < 24 * 3600
    assert sessions[0]["events"] + sessions[1]["events"] == 80


def test_summary_fields_from_the_events() -> None:
    page = {"type": "page", "event": None}
    _, sessions = run(
        [
            ev(
                1,
                0,
                context={
                    "page": {"url": "https://a/x", "referrer": "https://g/"},
                    "campaign": {"source": "ads"},
                    "userAgent": UA,
                },
                **page,
            ),
            ev(2, 5, context={"page": {"url": "https://a/y"}}),
            ev(3, 6, context={"page": {"url": "https://a/z"}}, **page),
        ]
    )
    (only,) = sessions
    assert (only["entry_url"], only["exit_url"], only["referrer"]) == (
        "https://a/x",
        "https://a/z",
        "https://g/",
    )
    assert only["campaign"] == {"source": "ads"} and only["user_agent"] == UA
    assert (only["browser"], only["os"], only["device"]) == ("Mobile Safari", "iOS", "iPhone")
    assert (only["events"], only["pageviews"]) == (3, 2)


def test_out_of_order_within_reach_joins_and_too_old_is_late() -> None:
    state, fields, _ = sessionize(None, ev(1, 60), RULES)
    state, fields, _ = sessionize(state, ev(2, 45), RULES)  # 15 min before: joins
    assert fields == {"session_id": session_id_for("d1", "e0001"), "session_seq": 1}
    assert state is not None and state.start == T0 + timedelta(minutes=45)
    state, fields, closed = sessionize(state, ev(3, 0), RULES)  # 45 min before start: late
    assert fields == {"session_id": None, "session_seq": None, "late": True} and closed == []


def test_state_survives_its_changelog_form() -> None:
    state, _, _ = sessionize(None, ev(1, 0, context={"campaign": {"source": "x"}}), RULES)
    assert state is not None
    assert SessionState.from_json(state.to_json()) == state


# Event logs: a few devices, gaps that straddle the inactivity and maximum-length rules.
gaps = st.sampled_from([0, 1, 10, 29, 30, 31, 45, 120, 60 * 23, 60 * 25])
logs = st.lists(st.tuples(st.sampled_from(["d1", "d2", "d3"]), gaps), min_size=1, max_size=60)


def _build(log: list[tuple[str, int]]) -> list[dict[str, Any]]:
    clock: dict[str, float] = {}
    events = []
    for n, (device, gap) in enumerate(log):
        clock[device] = clock.get(device, 0) + gap
        events.append(ev(n, clock[device], device))
    return events


@settings(max_examples=200, deadline=None)
@given(logs, st.integers(0, 60), st.integers(1, 4), st.randoms())
def test_stream_equals_batch_for_any_split_partitioning_and_interleaving(
    log: list[tuple[str, int]], restart_at: int, partitions: int, rng: random.Random
) -> None:
    events = _build(log)
    expected, _ = run(events)
    # The stream: devices spread over partitions, partitions interleaved at random (per
    # device order kept), a restart at any point that reloads state from its changelog form.
    by_partition: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        by_partition.setdefault(hash(event["anonymous_id"]) % partitions, []).append(event)
    arrival: list[dict[str, Any]] = []
    queues = [list(q) for q in by_partition.values()]
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        arrival.append(queue.pop(0))
    table: dict[str, dict[str, Any]] = {}
    got = {}
    for i, event in enumerate(arrival):
        if i == restart_at:  # a worker restart: state comes back from the changelog
            table = {k: SessionState.from_json(v).to_json() for k, v in table.items()}
        saved = table.get(event["anonymous_id"])
        state, fields, _ = sessionize(
            SessionState.from_json(saved) if saved else None, event, RULES
        )
        assert state is not None
        table[event["anonymous_id"]] = state.to_json()
        got[event["event_id"]] = fields
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(logs)
def test_session_boundaries_follow_the_rules(log: list[tuple[str, int]]) -> None:
    events = _build(log)
    fields, _ = run(events)
    last: dict[str, tuple[datetime, datetime, str]] = {}
    for event in events:  # generated in time order per device
        at = datetime.fromisoformat(event["timestamp"])
        sid = fields[event["event_id"]]["session_id"]
        if event["anonymous_id"] in last:
            start, prev, prev_sid = last[event["anonymous_id"]]
            same = at - prev <= RULES.inactivity and at - start < RULES.max_length
            assert (sid == prev_sid) == same
            if sid != prev_sid:
                start = at
        else:
            start = at
        last[event["anonymous_id"]] = (start, at, sid)
