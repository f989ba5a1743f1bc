"""B2B accounts: bands, firmographics, member roll-ups, and (hypothesis) any order of
updates with any replays gives the from-scratch account."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.accounts import (
    AccountState,
    account_record,
    account_updates,
    employee_band,
    fold_account,
    forget_members,
    revenue_band,
)
from pipeline.emaildomains import email_kind


@pytest.mark.parametrize(
    ("employees", "band"),
    [
        *[(1, "1-10"), (10, "1-10"), (11, "11-50"), ("200", "51-200"), (201, "201-1000")],
        *[(5000, "1001-5000"), (5001, "5000+"), (0, None), ("many", None), (True, None)],
    ],
)
def test_employee_bands(employees: Any, band: str | None) -> None:
    assert employee_band(employees) == band


@pytest.mark.parametrize(
    ("revenue", "band"),
    [
        *[(0, "<1M"), (999_999, "<1M"), (1_000_000, "1M-10M"), ("25,000,000", "10M-50M")],
        *[(99e6, "50M-100M"), (5e8, "100M-1B"), (2e9, "1B+"), (None, None), (-1, None)],
    ],
)
def test_revenue_bands(revenue: Any, band: str | None) -> None:
    assert revenue_band(revenue) == band


def test_free_mail_list_is_shipped_and_read() -> None:
    assert email_kind("x@gmail.com") == "consumer"
    assert email_kind("x@protonmail.com") == "consumer"
    assert email_kind("x@gmail.com.acme.io") == "business"


def group_event(n: int, traits: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": f"g{n}", "type": "group", "account_id": "acme", "traits": traits}


def profile(person: str, version: int, last_seen: str, **traits: Any) -> dict[str, Any]:
    return {
        "person_id": person,
        "version": version,
        "last_seen": last_seen,
        "traits": traits,
        "properties": {"lead_score": 10.0 * version},
        "email_kind": email_kind(traits.get("email")),
        "account_ids": ["acme"],
    }


def test_firmographics_and_roll_ups() -> None:
    updates = account_updates(
        group_event(
            1,
            {
                "name": "Acme",
                "industry": "Software",
                "employees": 120,
                "annualRevenue": 12_000_000,
                "address": {"country": "DE", "state": "Berlin"},
                "sicCode": 7372,
                "technologies": "react, postgres",
            },
        ),
        profile("u:ann", 3, "2026-11-20T10:00:00.000Z", title="CTO", email="ann@acme.io"),
    )
    updates += account_updates(
        {"event_id": "e9", "type": "track"},
        profile("u:bob", 2, "2026-11-01T10:00:00.000Z", role="admin", email="bob@gmail.com"),
    )
    state = None
    for update in updates:
        state, changed = fold_account(state, update)
        assert changed
    assert state is not None
    record = account_record(state)
    assert record | {"traits": None} == {
        "account_id": "acme",
        "version": 1 + 3 + 2,
        "name": "Acme",
        "industry": "Software",
        "employees": 120,
        "employee_band": "51-200",
        "annual_revenue": 12_000_000.0,
        "revenue_band": "10M-50M",
        "country": "DE",
        "region": "Berlin",
        "sic_code": "7372",
        "naics_code": None,
        "technologies": ["postgres", "react"],
        "traits": None,
        "members": 2,
        "active_users_7d": 1,  # bob was last seen 19 days before the account's last activity
        "active_users_30d": 2,
        "titles": ["CTO"],
        "roles": ["admin"],
        "lead_score": 50.0,  # the sum of the members' scores
        "last_activity": "2026-11-20T10:00:00.000Z",
        "business_users": 1,
        "consumer_users": 1,
    }


@st.composite
def update_logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A stream of updates as the profiles stage sends them: per person, rising versions."""
    updates: list[dict[str, Any]] = []
    for n in range(draw(st.integers(0, 4))):
        traits = {draw(st.sampled_from(["industry", "employees"])): draw(st.integers(1, 9))}
        updates.append(account_updates(group_event(n, traits), {"account_ids": []} | _p())[0])
    for person in ("u:a", "u:b", "u:c")[: draw(st.integers(1, 3))]:
        for version in range(1, draw(st.integers(1, 4)) + 1):
            day = draw(st.integers(1, 28))
            seen = f"2026-11-{day:02d}T00:00:00.000Z"
            snapshot = profile(person, version, seen, title=draw(st.sampled_from(["CTO", "VP"])))
            updates.extend(account_updates({"type": "track"}, snapshot))
    return updates


def _p() -> dict[str, Any]:
    return {"person_id": "u:x", "version": 0, "last_seen": None}


def from_scratch(updates: list[dict[str, Any]]) -> AccountState:
    """Group traits in arrival order, each member's highest version."""
    state = AccountState("acme")
    for update in {u["event_id"]: u for u in updates if u["kind"] == "group"}.values():
        state.traits.update(update["traits"])
        state.group_events += 1
    for update in sorted((u for u in updates if u["kind"] == "member"), key=lambda u: u["version"]):
        state.members[update["person_id"]] = {
            k: update[k] for k in ("version", "last_seen", "title", "role", "lead_score")
        } | {"email_kind": update["email_kind"]}
    return state


@settings(max_examples=150, deadline=None)
@given(log=update_logs(), data=st.data())
def test_any_member_interleaving_with_replays_gives_the_from_scratch_account(
    log: list[dict[str, Any]], data: st.DataObject
) -> None:
    groups = [u for u in log if u["kind"] == "group"]
    members = data.draw(st.permutations([u for u in log if u["kind"] == "member"]))
    # Group updates keep their order (one partition); members arrive in any order, and a
    # crash replays a random prefix of everything.
    arrival = groups + members
    arrival += arrival[: data.draw(st.integers(0, len(arrival)))]
    state = None
    for update in arrival:
        state, _ = fold_account(state, update)
    assert state is not None  # every log has at least one member update
    assert account_record(state) == account_record(from_scratch(log))


def _member(person: str, version: int, title: str) -> dict[str, Any]:
    return {
        "kind": "member",
        "account_id": "acme",
        "person_id": person,
        "version": version,
        "last_seen": "2026-11-01T00:00:00.000Z",
        "title": title,
        "role": None,
        "lead_score": 1.0,
        "email_kind": None,
    }


def test_a_forgotten_member_leaves_the_account_whose_version_still_grows() -> None:
    state, _ = fold_account(None, _member("u:gone", 7, "CTO"))
    state, _ = fold_account(state, _member("u:kept", 3, "Engineer"))
    before = account_record(state)
    after_state, changed = forget_members(state, ["u:gone", "u:never-a-member"])
    after = account_record(after_state)
    assert changed and after["members"] == 1 and after["titles"] == ["Engineer"]
    assert after["version"] > before["version"]
    assert forget_members(after_state, ["u:gone"]) == (after_state, False)  # replayed
    # The saved form round-trips; a state saved before `retired` existed still loads.
    assert AccountState.from_json(after_state.to_json()) == after_state
    old = {k: v for k, v in state.to_json().items() if k != "retired"}
    assert AccountState.from_json(old).retired == 0
    # A later update of the kept member still raises the version past the forget.
    later, _ = fold_account(after_state, _member("u:kept", 4, "Engineer"))
    assert account_record(later)["version"] > after["version"]
