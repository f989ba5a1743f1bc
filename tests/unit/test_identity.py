"""Identity resolution rules."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.identity import DeviceIdentity, resolve


def ev(
    n: int, anon: str | None = "d1", user: str | None = None, kind: str = "track", **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "type": kind,
        "anonymous_id": anon,
        "user_id": user,
        "timestamp": f"2026-11-23T10:00:{n:02d}.000Z",
        **extra,
    }


def play(events: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    states: dict[str, DeviceIdentity] = {}
    persons, records = [], []
    for event in events:
        key = event["anonymous_id"] or f"user:{event['user_id']}"
        state, person, out = resolve(states.get(key), event)
        states[key] = DeviceIdentity.from_json(state.to_json())
        persons.append(person)
        records += out
    return persons, records


def test_identify_links_the_device_and_later_events_follow() -> None:
    persons, records = play([ev(1), ev(2), ev(3, user="u7", kind="identify"), ev(4)])
    assert persons == ["a:d1", "a:d1", "u:u7", "u:u7"]
    assert [(r["kind"], r["from_person"], r["to_person"], r["event_id"]) for r in records] == [
        ("link", "a:d1", "u:u7", "e3")
    ]


def test_shared_computer_switches_without_merging() -> None:
    persons, records = play(
        [
            ev(1),
            ev(2, user="alice", kind="identify"),
            ev(3),
            ev(4, user="bob", kind="identify"),
            ev(5),
            ev(6, user="alice", kind="identify"),
        ]
    )
    assert persons == ["a:d1", "u:alice", "u:alice", "u:bob", "u:bob", "u:alice"]
    kinds = [(r["kind"], r["from_person"], r["to_person"]) for r in records]
    assert kinds == [
        ("link", "a:d1", "u:alice"),
        ("switch", "u:alice", "u:bob"),
        ("switch", "u:bob", "u:alice"),
    ]


def test_alias_is_the_only_merge() -> None:
    persons, records = play(
        [
            ev(1, user="old-id", kind="identify"),
            ev(2, user="new-id", kind="alias", previous_id="old-id"),
            ev(3),
        ]
    )
    assert persons == ["u:old-id", "u:new-id", "u:new-id"]
    merges = {(r["from_person"], r["to_person"]) for r in records if r["kind"] == "alias"}
    assert merges == {("u:old-id", "u:new-id"), ("a:old-id", "u:new-id")}


def test_server_side_events_without_a_device() -> None:
    persons, records = play([ev(1, anon=None, user="u1")])
    assert persons == ["u:u1"] and records == []


devices = st.sampled_from(["d1", "d2", "d3"])
users = st.none() | st.sampled_from(["alice", "bob", "carol"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(devices, users), max_size=40))
def test_identify_never_merges_two_identified_people(log: list[tuple[str, str | None]]) -> None:
    events = [
        ev(i, anon=d, user=u, kind="identify" if u else "track") for i, (d, u) in enumerate(log)
    ]
    persons, records = play(events)
    merges = [r for r in records if r["kind"] in ("link", "alias")]
    assert all(r["from_person"].startswith("a:") for r in merges)
    linked = [r["anonymous_id"] for r in merges]
    assert len(linked) == len(set(linked))  # each device links once, to its first user
    for event, person in zip(events, persons, strict=True):
        if event["user_id"]:
            assert person == f"u:{event['user_id']}"


def test_a_person_with_too_many_devices_is_flagged_once() -> None:
    from pipeline.identity import count_device

    devices: list[str] = []
    flags = []
    for n in range(6):
        link = {
            "kind": "link",
            "anonymous_id": f"d{n % 5}",
            "to_person": "u:x",
            "event_id": f"e{n}",
            "timestamp": "2026-11-23T10:00:00.000Z",
        }
        devices, flag = count_device(devices, link, limit=3)
        flags.append(flag)
    assert [f is not None for f in flags] == [False, False, False, True, False, False]
    first = next(f for f in flags if f)
    assert (first["kind"], first["to_person"], first["devices"], first["limit"]) == (
        "many_devices",
        "u:x",
        4,
        3,
    )
    assert len(devices) == 4
    assert count_device(devices, {"kind": "switch", "anonymous_id": "z"}, 3) == (devices, None)
