"""``fold_history`` (a whole history at once, what the batch paths use) against the stream's
one-event-at-a-time ``fold_cohorts``: equal states for any split, order, replays and
occurrence limit (hypothesis); ``memberships`` against ``evaluate``'s verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipeline.cohorts
from pipeline.cohorts import (
    CohortPlan,
    CohortState,
    account_facts,
    cohort_plan,
    evaluate,
    fold_cohorts,
    fold_history,
    memberships,
    with_record,
)
from pipeline.definitions import load_definitions
from pipeline.timeutil import format_ts, parse_ts

T0 = datetime(2026, 11, 1, tzinfo=UTC)

# Every criterion kind that keeps state, with different lookbacks per event, and a defined
# event D that some A and B events also are.
_WHERE = (
    "{any: [{performed: {event: A, at_least: 2, within: 3h}},"
    " {all: [{stopped: {event: B, window: 2h}}, {not_performed: {event: C, within: 1h}}]},"
    " {restarted: {event: C, window: 1h}}, {sequence: {steps: [A, D, C], within: 5h}},"
    " {regularly: {event: B, at_least: 1, every: 1h, periods: 3}},"
    " {first_performed: {event: D, within: 2h}}]}"
)
_ACCOUNT_WHERE = (
    "{any: [{users_performed: {event: A, at_least_users: 2, within: 2h}},"
    " {users_active_share: {at_least: 0.5, within: 1h}}]}"
)


def _plan(tmp_path: Path, where: str, of: str = "person") -> CohortPlan:
    path = tmp_path / "definitions.yaml"
    path.write_text(f"cohorts:\n  - name: c\n    of: {of}\n    where: {where}\n")
    return cohort_plan(load_definitions(path), of)


def _event(i: int, name: str, defined: list[str], minutes: int, person: str) -> dict[str, Any]:
    return {
        "event_id": f"e{i}",
        "event": name,
        "defined_events": defined,
        "timestamp": format_ts(T0 + timedelta(minutes=minutes)),
        "person_id": person,
    }


def _one_by_one(
    state: CohortState | None, subject: str, items: list[dict[str, Any]], plan: CohortPlan
) -> CohortState | None:
    for item in items:
        state, _ = fold_cohorts(state, subject, item, plan)
    return state


_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C", "E"]),  # E: referenced by no criterion
        st.sampled_from([[], ["D"], ["A"], ["D", "B"]]),
        st.integers(0, 60 * 12),
    ),
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(
    events=_EVENTS,
    order=st.randoms(use_true_random=False),
    replays=st.integers(0, 5),
    split=st.integers(0, 40),
    limit=st.sampled_from([2, 3, pipeline.cohorts.LIMIT]),
)
def test_fold_history_equals_one_fold_per_event(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[tuple[str, list[str], int]],
    order: Any,
    replays: int,
    split: int,
    limit: int,
) -> None:
    plan = _plan(tmp_path_factory.mktemp("defs"), _WHERE)
    records = [_event(i, n, d, m, "p1") for i, (n, d, m) in enumerate(events)]
    shuffled = records + records[:replays]
    order.shuffle(shuffled)
    head, tail = shuffled[:split], shuffled[split:]
    with pytest.MonkeyPatch.context() as patch:
        # A small limit makes the "newest LIMIT occurrences" pruning matter too.
        patch.setattr(pipeline.cohorts, "LIMIT", limit)
        before = _one_by_one(None, "p1", head, plan)
        snapshot = before.to_json() if before is not None else None
        expected = _one_by_one(before, "p1", tail, plan)
        got = fold_history(before, "p1", tail, plan)
        whole = fold_history(None, "p1", shuffled, plan)
    if expected is None:  # no events at all: nothing folded
        assert got == CohortState("p1", "person") and whole == got
        return
    assert got.to_json() == expected.to_json()
    assert whole.to_json() == expected.to_json()
    as_of = T0 + timedelta(minutes=max(m for *_, m in events))
    assert evaluate(got, plan, as_of) == evaluate(expected, plan, as_of)
    # The state passed in is left as it was (the stream may still hold it).
    assert (before.to_json() if before is not None else None) == snapshot


@settings(max_examples=40, deadline=None)
@given(
    facts=st.lists(
        st.tuples(
            st.sampled_from(["p1", "p2", "p3"]),
            st.sampled_from(["A", "B", "C"]),
            st.integers(0, 60 * 6),
        ),
        max_size=20,
    ),
    order=st.randoms(use_true_random=False),
    split=st.integers(0, 25),
)
def test_account_fold_history_equals_one_fold_per_fact(
    tmp_path_factory: pytest.TempPathFactory,
    facts: list[tuple[str, str, int]],
    order: Any,
    split: int,
) -> None:
    plan = _plan(tmp_path_factory.mktemp("defs"), _ACCOUNT_WHERE, of="account")
    records = []
    for i, (person, name, minutes) in enumerate(facts):
        event = _event(i, name, [], minutes, person)
        records += account_facts(event, {"person_id": person, "account_ids": ["acct"]}, plan)
    shuffled = records + records[:3]
    order.shuffle(shuffled)
    before = _one_by_one(None, "acct", shuffled[:split], plan)
    expected = _one_by_one(before, "acct", shuffled[split:], plan)
    got = fold_history(before, "acct", shuffled[split:], plan)
    if expected is None:
        assert got == CohortState("acct", "account")
        return
    assert got.to_json() == expected.to_json()


def test_a_history_without_a_timestamp_is_refused(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "{performed: {event: A, within: 1h}}")
    good = _event(0, "A", [], 0, "p1")
    with pytest.raises(ValueError, match="no valid timestamp"):
        fold_history(None, "p1", [good, {**good, "event_id": "e1", "timestamp": "soon"}], plan)


@pytest.mark.parametrize(
    "spelled",
    [
        "2026-11-01T10:00:00.123Z",  # format_ts's own spelling (taken as it is)
        "2026-11-01T10:00:00Z",
        "2026-11-01T11:00:00.123+01:00",
        "2026-11-01T10:00:00.123456Z",
        "2026-11-01 10:00:00.123Z",
        "2026-11-01T10:00:00.123",  # naive: UTC
        "2024-02-29T23:59:59.999Z",
    ],
)
def test_any_spelling_of_a_time_folds_as_format_ts_spells_it(tmp_path: Path, spelled: str) -> None:
    plan = _plan(tmp_path, "{performed: {event: A, within: 1h}}")
    event = {**_event(0, "A", [], 0, "p1"), "timestamp": spelled}
    state = fold_history(None, "p1", [event], plan)
    one, _ = fold_cohorts(None, "p1", {**event, "timestamp": spelled}, plan)
    assert state.newest == one.newest == format_ts(parse_ts(spelled))  # type: ignore[arg-type]
    assert state.seen["A"] == [[state.newest, "e0"]]


@pytest.mark.parametrize(
    "spelled",
    [
        "2026-02-30T10:00:00.123Z",
        "2026-11-01T24:00:00.000Z",
        "2026-11-01T10:00:60.000Z",
        "0000-01-01T00:00:00.000Z",
    ],
)
def test_impossible_times_in_the_canonical_shape_are_refused(tmp_path: Path, spelled: str) -> None:
    plan = _plan(tmp_path, "{performed: {event: A, within: 1h}}")
    event = {**_event(0, "A", [], 0, "p1"), "timestamp": spelled}
    with pytest.raises(ValueError, match="no valid timestamp"):
        fold_history(None, "p1", [event], plan)
    with pytest.raises(ValueError, match="no valid timestamp"):
        fold_cohorts(None, "p1", event, plan)


# Nested all/any over every kind, a property among them, so early stops matter.
_NESTED = """
cohorts:
  - name: wide
    where: {any: [{performed: {event: A, at_least: 2, within: 3h}}, {property: {plan: {eq: pro}}}]}
  - name: narrow
    where:
      all:
        - {not_performed: {event: C, within: 1h}}
        - any:
            - {stopped: {event: B, window: 2h}}
            - {restarted: {event: C, window: 1h}}
            - {sequence: {steps: [A, D, C], within: 5h}}
        - {regularly: {event: B, at_least: 1, every: 1h, periods: 3}}
  - {name: fresh, where: {first_performed: {event: D, within: 2h}}}
  - {name: few, where: {performed: {event: B, at_most: 1, within: 2h}}}
  - {name: two, where: {performed: {event: D, exactly: 2, within: 4h}}}
  - {name: gone, where: {stopped: {event: A, window: 1h}}}
  - {name: back, where: {restarted: {event: A, window: 30m}}}
  - {name: none, where: {not_performed: {event: B, within: 90m}}}
"""


@settings(max_examples=80, deadline=None)
@given(
    events=_EVENTS,
    plan_value=st.sampled_from([None, "pro", "free"]),
    probe=st.integers(0, 60 * 8),
)
def test_memberships_are_the_members_of_evaluate(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[tuple[str, list[str], int]],
    plan_value: str | None,
    probe: int,
) -> None:
    path = tmp_path_factory.mktemp("defs") / "definitions.yaml"
    path.write_text(_NESTED)
    plan = cohort_plan(load_definitions(path), "person")
    records = [_event(i, n, d, m, "p1") for i, (n, d, m) in enumerate(events)]
    state = fold_history(None, "p1", records, plan)
    state, _ = with_record(state, "p1", {"properties": {"plan": plan_value}}, plan)
    as_of = T0 + timedelta(minutes=max([m for *_, m in events] + [0]) + probe)
    verdicts = evaluate(state, plan, as_of)
    assert memberships(state, plan, as_of) == {n for n, v in verdicts.items() if v.member}
