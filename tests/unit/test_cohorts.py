"""Cohorts: every criterion kind at its window edges, the fold against a from-scratch
evaluation (hypothesis), replays, and next_change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cohorts import (
    CohortPlan,
    CohortState,
    account_facts,
    advance,
    change_points,
    cohort_plan,
    evaluate,
    fold_cohorts,
    next_change,
    with_record,
)
from pipeline.definitions import load_definitions
from pipeline.timeutil import format_ts

T0 = datetime(2026, 11, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def _plan(tmp_path: Path, where: str, of: str = "person") -> CohortPlan:
    path = tmp_path / "definitions.yaml"
    path.write_text(f"cohorts:\n  - name: c\n    of: {of}\n    where: {where}\n")
    return cohort_plan(load_definitions(path), of)


def _event(name: str, at: datetime, event_id: str | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id or f"{name}-{format_ts(at)}",
        "event": name,
        "timestamp": format_ts(at),
        "person_id": "p1",
    }


def _fold(plan: CohortPlan, events: list[dict[str, Any]]) -> CohortState:
    state = CohortState("p1", plan.of)
    for event in events:
        state, _ = fold_cohorts(state, "p1", event, plan)
    return state


def _member(plan: CohortPlan, state: CohortState, as_of: datetime) -> bool:
    return evaluate(state, plan, as_of)["c"].member


def test_performed_window_edges_are_inclusive(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "{performed: {event: A, at_least: 2, within: 1d}}")
    state = _fold(plan, [_event("A", T0), _event("A", T0 + timedelta(hours=1))])
    assert not _member(plan, state, T0 + timedelta(minutes=30))  # only one so far
    assert _member(plan, state, T0 + timedelta(hours=1))  # the window's end is inclusive
    assert _member(plan, state, T0 + timedelta(days=1))  # its start is inclusive too
    assert not _member(plan, state, T0 + timedelta(days=1) + MS)


@pytest.mark.parametrize(
    ("op", "count", "expected"),
    [("exactly", 2, True), ("exactly", 3, False), ("at_most", 2, True), ("at_most", 1, False)],
)
def test_performed_exactly_and_at_most(tmp_path: Path, op: str, count: int, expected: bool) -> None:
    plan = _plan(tmp_path, f"{{performed: {{event: A, {op}: {count}, within: 1d}}}}")
    state = _fold(plan, [_event("A", T0), _event("A", T0 + timedelta(hours=1))])
    assert _member(plan, state, T0 + timedelta(hours=2)) is expected


def test_empty_history(tmp_path: Path) -> None:
    not_done = _plan(tmp_path, "{not_performed: {event: A, within: 1d}}")
    assert _member(not_done, CohortState("p1"), T0)
    done = _plan(tmp_path, "{performed: {event: A, within: 1d}}")
    assert not _member(done, CohortState("p1"), T0)
    assert next_change(CohortState("p1"), done, T0) is None


def test_not_performed_and_first_performed(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        "{all: [{not_performed: {event: B, within: 1h}},"
        " {first_performed: {event: A, within: 1d}}]}",
    )
    state = _fold(plan, [_event("A", T0 + timedelta(hours=5)), _event("A", T0)])
    assert state.first["A"][0] == format_ts(T0)
    assert _member(plan, state, T0 + timedelta(days=1))
    assert not _member(plan, state, T0 + timedelta(days=1) + MS)  # the first one is old now
    with_b = _fold(plan, [_event("A", T0), _event("B", T0 + timedelta(hours=2))])
    verdict = evaluate(with_b, plan, T0 + timedelta(hours=2, minutes=30))["c"]
    assert not verdict.member and verdict.criterion == "did not perform B within 1h"
    assert _member(plan, with_b, T0 + timedelta(hours=3) + MS)


def test_stopped_and_restarted(tmp_path: Path) -> None:
    stopped = _plan(tmp_path, "{stopped: {event: A, window: 1d}}")
    state = _fold(stopped, [_event("A", T0)])
    assert not _member(stopped, state, T0 + timedelta(days=1))  # still in the last window
    assert _member(stopped, state, T0 + timedelta(days=1) + MS)
    assert _member(stopped, state, T0 + timedelta(days=2))
    assert not _member(stopped, state, T0 + timedelta(days=2) + MS)  # gone from both windows
    restarted = _plan(tmp_path, "{restarted: {event: A, window: 1d}}")
    back = [_event("A", T0), _event("A", T0 + timedelta(days=5))]
    state = _fold(restarted, back)
    assert _member(restarted, state, T0 + timedelta(days=5, hours=1))
    assert not _member(restarted, _fold(restarted, back[1:]), T0 + timedelta(days=5, hours=1))
    again = _fold(restarted, [*back, _event("A", T0 + timedelta(days=4))])  # previous window
    assert not _member(restarted, again, T0 + timedelta(days=5, hours=1))


def test_sequence_needs_the_order_inside_the_window(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "{sequence: {steps: [A, B], within: 1h}}")
    in_order = _fold(plan, [_event("A", T0), _event("B", T0 + timedelta(minutes=10))])
    assert _member(plan, in_order, T0 + timedelta(minutes=20))
    assert not _member(plan, in_order, T0 + timedelta(hours=1) + MS)  # A left the window
    reversed_ = _fold(plan, [_event("B", T0), _event("A", T0 + timedelta(minutes=10))])
    assert not _member(plan, reversed_, T0 + timedelta(minutes=20))


def test_regularly_every_period(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "{regularly: {event: A, at_least: 1, every: 1d, periods: 3}}")
    days = [_event("A", T0 + timedelta(days=d, hours=12)) for d in range(3)]
    state = _fold(plan, days)
    assert _member(plan, state, T0 + timedelta(days=3))
    assert not _member(plan, _fold(plan, days[:2]), T0 + timedelta(days=3))  # a gap today
    assert not _member(plan, state, T0 + timedelta(days=3, hours=12) + MS)  # day one ended


def test_nested_any_all_and_property(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        "{any: [{all: [{property: {plan: {eq: trial}}}, {performed: {event: A, within: 1d}}]},"
        " {property: {seats: {gte: 10}}}]}",
    )
    state = _fold(plan, [_event("A", T0)])
    assert not _member(plan, state, T0)
    trial, _ = with_record(state, "p1", {"properties": {}, "traits": {"plan": "trial"}}, plan)
    verdict = evaluate(trial, plan, T0)["c"]
    assert verdict.member and verdict.criterion.startswith("(plan eq 'trial' and performed A")
    big, changed = with_record(state, "p1", {"seats": 12, "traits": {}}, plan)
    assert changed and evaluate(big, plan, T0 + timedelta(days=9))["c"].criterion == (
        "seats gte 10"
    )


def test_account_quantifiers(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        "{all: [{users_performed: {event: A, at_least_users: 2, within: 1d}},"
        " {users_active_share: {at_least: 0.5, within: 1d}}]}",
        of="account",
    )
    state = CohortState("acct", "account")
    for person, name, at in [("p1", "A", T0), ("p2", "A", T0), ("p3", "B", T0), ("p4", "B", T0)]:
        event = _event(name, at, f"{person}-{name}") | {"person_id": person}
        for fact in account_facts(event, {"person_id": person, "account_ids": ["acct"]}, plan):
            state, _ = fold_cohorts(state, "acct", fact, plan)
    assert _member(plan, state, T0 + timedelta(hours=1))  # 2 users did A, 4/4 active
    assert not _member(plan, state, T0 + timedelta(days=1) + MS)
    late = _event("B", T0 + timedelta(days=2), "p3-late") | {"person_id": "p3"}
    (fact,) = account_facts(late, {"person_id": "p3", "account_ids": ["acct"]}, plan)
    state, _ = fold_cohorts(state, "acct", fact, plan)
    verdict = evaluate(state, plan, T0 + timedelta(days=2))["c"]
    assert verdict.detail[next(iter(verdict.detail))]["observed"] == 0
    assert list(verdict.detail.values())[1]["observed"] == 0.25


def test_replays_change_nothing_and_enter_once(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "{performed: {event: A, within: 1d}}")
    event = _event("A", T0)
    state, changed = fold_cohorts(None, "p1", event, plan)
    assert changed
    state, changes = advance(state, plan, T0 + MS, event["event_id"])
    assert [c["change"] for c in changes] == ["enter"]
    assert changes[0]["detail"] == {"performed A at least 1 times within 1d": 1}
    again, changed = fold_cohorts(state, "p1", event, plan)
    assert not changed and again.to_json() == state.to_json()
    _, changes = advance(again, plan, T0 + 2 * MS, event["event_id"])
    assert changes == []
    assert state.next == format_ts(T0 + timedelta(days=1) + MS)
    left, changes = advance(state, plan, T0 + timedelta(days=1) + MS, None)
    assert [(c["change"], c["event_id"]) for c in changes] == [("exit", None)]
    assert left.members() == set()


_NAMES = st.sampled_from(["A", "B", "C"])
_WHERE = (
    "{any: [{performed: {event: A, at_least: 2, within: 3h}},"
    " {all: [{stopped: {event: B, window: 2h}}, {not_performed: {event: C, within: 1h}}]},"
    " {restarted: {event: C, window: 1h}}, {sequence: {steps: [A, B, C], within: 5h}},"
    " {regularly: {event: B, at_least: 1, every: 1h, periods: 3}},"
    " {first_performed: {event: A, within: 2h}}]}"
)


@settings(max_examples=60, deadline=None)
@given(
    events=st.lists(st.tuples(_NAMES, st.integers(0, 60 * 12)), max_size=25),
    order=st.randoms(use_true_random=False),
    replays=st.integers(0, 5),
    probe=st.integers(0, 60 * 8),
)
def test_incremental_fold_equals_from_scratch(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[tuple[str, int]],
    order: Any,
    replays: int,
    probe: int,
) -> None:
    plan = _plan(tmp_path_factory.mktemp("defs"), _WHERE)
    records = [
        _event(name, T0 + timedelta(minutes=m), f"e{i}") for i, (name, m) in enumerate(events)
    ]
    shuffled = records + records[:replays]
    order.shuffle(shuffled)
    incremental = _fold(plan, shuffled)
    scratch = _fold(plan, sorted(records, key=lambda r: (r["timestamp"], r["event_id"])))
    # The worker evaluates at its clock, after the events it folded (pruning relies on it).
    as_of = T0 + timedelta(minutes=max([m for _, m in events] + [0]) + probe)
    assert evaluate(incremental, plan, as_of) == evaluate(scratch, plan, as_of)
    # From scratch without the pruning: every occurrence, evaluated directly.
    assert _member(plan, incremental, as_of) == _member(plan, _unpruned(plan, records), as_of)
    upcoming = next_change(incremental, plan, as_of)
    # The fast search finds exactly the first change point after as_of.
    points = change_points(incremental, plan)
    assert upcoming == next((p for p in points if p > as_of), None)
    if upcoming is None:
        far = as_of + timedelta(days=30)
        assert _member(plan, incremental, far) == _member(plan, incremental, as_of)
    else:
        # Nothing flips before next_change: just before it equals now.
        assert _member(plan, incremental, upcoming - MS) == _member(plan, incremental, as_of)


def _unpruned(plan: CohortPlan, records: list[dict[str, Any]]) -> CohortState:
    state = CohortState("p1")
    for record in records:
        for name in plan.lookback:
            if record["event"] == name:
                entry = [record["timestamp"], record["event_id"]]
                state.seen[name] = sorted([*state.seen.get(name, []), entry])
                if name in plan.first and (name not in state.first or entry < state.first[name]):
                    state.first[name] = entry
    return state


def test_next_change_is_when_membership_flips(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "{stopped: {event: A, window: 1h}}")
    state = _fold(plan, [_event("A", T0)])
    first = next_change(state, plan, T0)
    assert first == T0 + timedelta(hours=1) + MS
    assert not _member(plan, state, first - MS) and _member(plan, state, first)
    second = next_change(state, plan, first)
    assert second == T0 + timedelta(hours=2) + MS
    assert _member(plan, state, second - MS) and not _member(plan, state, second)


_ACCOUNT_WHERE = (
    "{any: [{users_performed: {event: A, at_least_users: 2, within: 2h}},"
    " {users_active_share: {at_least: 0.5, within: 1h}}]}"
)


@settings(max_examples=40, deadline=None)
@given(
    facts=st.lists(
        st.tuples(st.sampled_from(["p1", "p2", "p3"]), _NAMES, st.integers(0, 60 * 6)),
        max_size=20,
    ),
    order=st.randoms(use_true_random=False),
    probe=st.integers(0, 60 * 4),
)
def test_account_fold_is_order_free(
    tmp_path_factory: pytest.TempPathFactory,
    facts: list[tuple[str, str, int]],
    order: Any,
    probe: int,
) -> None:
    plan = _plan(tmp_path_factory.mktemp("defs"), _ACCOUNT_WHERE, of="account")
    records = []
    for i, (person, name, minutes) in enumerate(facts):
        event = _event(name, T0 + timedelta(minutes=minutes), f"e{i}") | {"person_id": person}
        records += account_facts(event, {"person_id": person, "account_ids": ["acct"]}, plan)
    shuffled = records + records[:3]
    order.shuffle(shuffled)

    def fold(items: list[dict[str, Any]]) -> CohortState:
        state = CohortState("acct", "account")
        for item in items:
            state, _ = fold_cohorts(state, "acct", item, plan)
        return state

    as_of = T0 + timedelta(minutes=max([m for *_, m in facts] + [0]) + probe)
    assert evaluate(fold(shuffled), plan, as_of) == evaluate(fold(records), plan, as_of)
