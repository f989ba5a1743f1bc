"""Behavioural cohorts as pure rules over one JSON state per subject (person or account).

- ``fold_cohorts(state, subject_id, item, plan)`` folds one input: an enriched event
  (persons) or a per-event *fact* from a member (accounts, see ``account_facts``). It
  keeps only what the criteria need: per referenced event, the ``[time, event_id]`` of its
  occurrences no older than the longest lookback of any criterion using it (counted back
  from the newest event the subject has, so the kept set does not depend on arrival
  order), at most ``LIMIT`` of them (the newest), plus its first occurrence
  (``first_performed``, ``restarted``). Accounts keep, per member, the time of their last
  event and of their last occurrence of each referenced event. A replayed input (same
  event_id) changes nothing: all of it is sets, minima and maxima. ``cohort_plan(
  definitions, of)`` says what to keep.
- ``fold_history(state, subject_id, items, plan)`` folds many inputs at once (a whole history
  in batch) into the state repeated ``fold_cohorts`` calls give, in any order: one copy and
  one prune instead of one per input.
- ``with_record(state, subject_id, record, plan)`` snapshots the profile/account
  properties that ``property`` criteria read (so the timer can re-evaluate without them).
- ``evaluate(state, plan, as_of)`` gives each cohort's membership, the criterion that
  decided and what each leaf observed; ``memberships`` only the cohorts it is a member of
  (no detail, so ``all``/``any`` stop early: what a batch over every subject needs).
  ``advance`` turns flips into change records.
- ``next_change(state, plan, as_of)``: the earliest instant after ``as_of`` at which any
  time-based criterion can flip without new events; the worker's timer re-evaluates only
  subjects whose instant has passed.

"Now" is ``as_of``: the worker's clock when it evaluates (the event's arrival or a timer
tick), not the event's time. A window ``within: D`` is ``[as_of - D, as_of]``, both ends
inclusive, to the millisecond. ``stopped``/``restarted`` compare the last window with the
one before it, ``[as_of - 2D, as_of - D)``; ``restarted`` also needs a first occurrence
before that. ``regularly`` splits ``[as_of - K*every, as_of]`` into K periods the same way.
``sequence`` needs its steps in order (time, then event_id), all inside the window.
``users_performed`` counts members whose *last* occurrence is in the window;
``users_active_share`` divides members active in the window by all members seen. An event
stamped after ``as_of`` (a fast client clock) counts from its own time on. Pruning assumes
``as_of`` is not before the subject's newest event (the worker's clock runs after the
events it has seen); evaluating at an earlier instant may miss pruned occurrences.

Accounts learn of their members' events through facts the person stage sends on
``account_updates`` (keyed by account_id), one per event per account the person belongs to
at that moment; an account only hears of events after a member joined it.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from pipeline.cohort_spec import Cohort, Criterion
from pipeline.definitions import Definitions
from pipeline.properties import condition_holds, event_matches
from pipeline.timeutil import format_ts, parse_ts

__all__ = [
    "LIMIT",
    "CohortPlan",
    "CohortState",
    "Verdict",
    "account_facts",
    "advance",
    "change_points",
    "cohort_plan",
    "evaluate",
    "fold_cohorts",
    "fold_history",
    "memberships",
    "next_change",
    "with_record",
]

#: Occurrences kept per referenced event per person (the newest): thresholds above it
#: cannot be reached.
LIMIT = 1000
_MS = timedelta(milliseconds=1)
_EVENT_KINDS = ("performed", "not_performed", "first_performed", "stopped", "restarted")


@dataclass(frozen=True)
class CohortPlan:
    """The cohorts of one subject kind and what their state must keep."""

    of: str
    cohorts: tuple[Cohort, ...]
    #: Referenced event -> how far back its occurrences matter.
    lookback: dict[str, timedelta]
    #: Events whose first occurrence matters.
    first: frozenset[str]
    #: Properties ``property`` criteria read.
    props: tuple[str, ...]


def _offsets(leaf: Criterion) -> tuple[timedelta, ...]:
    """How far back each window edge of ``leaf`` lies from ``as_of``."""
    if leaf.kind in ("stopped", "restarted"):
        return (leaf.within, 2 * leaf.within)
    if leaf.kind == "regularly":
        return tuple(leaf.within * k for k in range(1, leaf.periods + 1))
    if leaf.kind == "property":
        return ()
    return (leaf.within,)


def cohort_plan(definitions: Definitions, of: str) -> CohortPlan:
    """The plan for ``of`` (person or account) cohorts of ``definitions``."""
    cohorts = tuple(c for c in definitions.cohorts if c.of == of)
    lookback: dict[str, timedelta] = {}
    first: set[str] = set()
    props: list[str] = []
    for cohort in cohorts:
        for leaf in cohort.where.leaves():
            if leaf.kind == "property":
                props.extend(c.name for c in leaf.conditions if c.name not in props)
            for name in leaf.events:
                lookback[name] = max(lookback.get(name, timedelta(0)), max(_offsets(leaf)))
            if leaf.kind in ("first_performed", "restarted"):
                first.update(leaf.events)
    return CohortPlan(of, cohorts, lookback, frozenset(first), tuple(props))


@dataclass
class CohortState:
    """One subject's cohort state; JSON-able (``to_json``), replaceable by a batch seed."""

    subject_id: str
    kind: str = "person"
    newest: str | None = None
    #: person: event -> sorted [[time, event_id], ...] inside its lookback.
    seen: dict[str, list[list[str]]] = field(default_factory=dict)
    #: person: event -> [time, event_id] of its first occurrence.
    first: dict[str, list[str]] = field(default_factory=dict)
    #: account: member person_id -> time of their last event.
    users: dict[str, str] = field(default_factory=dict)
    #: account: event -> member -> time of their last occurrence inside its lookback.
    did: dict[str, dict[str, str]] = field(default_factory=dict)
    props: dict[str, Any] = field(default_factory=dict)
    #: cohort -> the last change record sent (its ``change`` says if a member).
    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    next: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The table's value form."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CohortState:
        """Inverse of ``to_json``."""
        return cls(**data)

    def members(self) -> set[str]:
        """Cohorts this subject is currently a member of."""
        return {name for name, change in self.last.items() if change["change"] == "enter"}


#: ``format_ts``'s spelling with every time field in range; the date is checked apart.
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z")


@lru_cache(maxsize=4096)
def _valid_day(day: str) -> bool:
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    return True


def _ts(item: Mapping[str, Any]) -> str:
    text = item.get("timestamp")
    # Times on the topics and from the batch are already format_ts's spelling, which parsing
    # and formatting again would give back unchanged: skip that (the costliest part of a fold).
    if isinstance(text, str) and _CANONICAL.fullmatch(text) and _valid_day(text[:10]):
        return text
    moment = parse_ts(text)
    if moment is None:
        raise ValueError(f"event {item.get('event_id')!r} has no valid timestamp")
    return format_ts(moment)


def _horizons(newest: str, plan: CohortPlan) -> dict[str, str]:
    """Per referenced event, the oldest time its occurrences are kept from (``newest`` minus
    its lookback); each lookback formatted once."""
    moment = parse_ts(newest)
    assert moment is not None, newest
    edges: dict[timedelta, str] = {}
    out = {}
    for name, back in plan.lookback.items():
        edge = edges.get(back)
        if edge is None:
            edge = edges[back] = format_ts(moment - back)
        out[name] = edge
    return out


def _copy(state: CohortState) -> CohortState:
    return CohortState(
        state.subject_id,
        state.kind,
        state.newest,
        {k: list(v) for k, v in state.seen.items()},
        dict(state.first),
        dict(state.users),
        {k: dict(v) for k, v in state.did.items()},
        dict(state.props),
        dict(state.last),
        state.next,
    )


def fold_cohorts(
    state: CohortState | None, subject_id: str, item: Mapping[str, Any], plan: CohortPlan
) -> tuple[CohortState, bool]:
    """Fold one event (persons) or fact (accounts); ``changed`` is False when it adds
    nothing (a replay, or an event no criterion reads that is not the newest)."""
    old = state or CohortState(subject_id, plan.of)
    new = _copy(old)
    at = _ts(item)
    event_id = str(item["event_id"])
    new.newest = max(filter(None, (old.newest, at)))
    if plan.of == "person":
        for name in plan.lookback:
            if not event_matches((name,), item):
                continue
            if name in plan.first and (name not in new.first or [at, event_id] < new.first[name]):
                new.first[name] = [at, event_id]
            entries = new.seen.get(name, [])
            if [at, event_id] not in entries:
                entries = sorted([*entries, [at, event_id]])
            new.seen[name] = entries
    else:
        person = str(item["person_id"])
        new.users[person] = max(new.users.get(person, at), at)
        for name in item.get("events") or ():
            if name in plan.lookback:
                members = new.did.setdefault(name, {})
                members[person] = max(members.get(person, at), at)
    _prune(new, plan)
    return new, new.to_json() != old.to_json()


def fold_history(
    state: CohortState | None,
    subject_id: str,
    items: Iterable[Mapping[str, Any]],
    plan: CohortPlan,
) -> CohortState:
    """Fold many events (persons) or facts (accounts) at once, in any order, replays
    included: the state equals folding them one by one with ``fold_cohorts`` (a hypothesis
    test holds them equal). Kept occurrences only depend on the set of inputs and the newest
    time (see the module docstring), so they are gathered first and pruned once; batch
    paths fold whole histories with it. No items: ``state`` (or a new empty one)."""
    new = _copy(state) if state is not None else CohortState(subject_id, plan.of)
    newest = new.newest
    lookback = plan.lookback
    if plan.of == "person":
        seen = {name: {(e[0], e[1]) for e in entries} for name, entries in new.seen.items()}
        first = {name: (e[0], e[1]) for name, e in new.first.items()}
        for item in items:
            at = _ts(item)
            if newest is None or at > newest:
                newest = at
            name = item.get("event")
            # The event's own name and a defined event it is count once each (event_matches).
            hits = [name] if name in lookback else []
            defined = item.get("defined_events")
            if defined:
                hits += [d for d in defined if d in lookback and d != name]
            if not hits:
                continue
            key = (at, str(item["event_id"]))
            for hit in hits:
                seen.setdefault(hit, set()).add(key)
                if hit in plan.first and (hit not in first or key < first[hit]):
                    first[hit] = key
        new.first = {name: list(e) for name, e in first.items()}
        # _prune's rule, applied before sorting: fewer to sort, only the kept become lists.
        horizons = _horizons(newest, plan) if newest is not None else {}
        new.seen = {}
        for name, entries in seen.items():
            edge = horizons.get(name, newest or "")
            new.seen[name] = [list(e) for e in sorted(e for e in entries if e[0] >= edge)[-LIMIT:]]
        new.newest = newest
    else:
        for item in items:
            at = _ts(item)
            if newest is None or at > newest:
                newest = at
            person = str(item["person_id"])
            new.users[person] = max(new.users.get(person, at), at)
            for name in item.get("events") or ():
                if name in lookback:
                    members = new.did.setdefault(name, {})
                    members[person] = max(members.get(person, at), at)
        new.newest = newest
        _prune(new, plan)
    return new


def _prune(state: CohortState, plan: CohortPlan) -> None:
    if state.newest is None:
        return
    horizons = _horizons(state.newest, plan)
    for name, entries in state.seen.items():
        # A name the plan no longer reads (state from older definitions) keeps no history.
        edge = horizons.get(name, state.newest)
        state.seen[name] = [e for e in entries if e[0] >= edge][-LIMIT:]
    for name, members in state.did.items():
        edge = horizons.get(name, state.newest)
        state.did[name] = {p: t for p, t in members.items() if t >= edge}


def _lookup(record: Mapping[str, Any], name: str) -> Any:
    for source in (record.get("properties"), record, record.get("traits")):
        if isinstance(source, Mapping) and name in source:
            return source[name]
    return None


def with_record(
    state: CohortState | None, subject_id: str, record: Mapping[str, Any], plan: CohortPlan
) -> tuple[CohortState, bool]:
    """Snapshot the properties ``property`` criteria read from the subject's profile or
    account record; ``changed`` when any of them changed."""
    old = state or CohortState(subject_id, plan.of)
    props = {name: _lookup(record, name) for name in plan.props}
    if props == old.props:
        return old, False
    new = _copy(old)
    new.props = props
    return new, True


def account_facts(
    event: Mapping[str, Any], profile: Mapping[str, Any], plan: CohortPlan
) -> list[dict[str, Any]]:
    """What one person event tells each of the person's accounts for account cohorts:
    who, when, and which referenced events it is (nothing without account cohorts)."""
    if not plan.cohorts:
        return []
    names = [name for name in plan.lookback if event_matches((name,), event)]
    fact = {
        "kind": "cohort_fact",
        "person_id": str(profile["person_id"]),
        "event_id": str(event["event_id"]),
        "timestamp": _ts(event),
        "events": names,
    }
    return [{**fact, "account_id": str(a)} for a in profile.get("account_ids") or ()]


@dataclass(frozen=True)
class Verdict:
    """One cohort's evaluation: membership, the deciding criterion, what leaves saw."""

    member: bool
    criterion: str
    #: leaf text -> {"observed": count/share/bool, "holds": bool}
    detail: dict[str, dict[str, Any]]


class _Window:
    """Window edges at ``as_of``, as strings comparable with stored times."""

    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self.end = format_ts(as_of)
        self._starts: dict[timedelta, str] = {}  # cohorts share windows: format each once
        self._checks: dict[int, tuple[CohortPlan, list[tuple[str, _Check]]]] = {}

    def start(self, back: timedelta) -> str:
        edge = self._starts.get(back)
        if edge is None:
            edge = self._starts[back] = format_ts(self.as_of - back)
        return edge

    def checks(self, plan: CohortPlan) -> list[tuple[str, _Check]]:
        """Each cohort of ``plan`` as a membership test at this instant, built once."""
        held = self._checks.get(id(plan))
        if held is None or held[0] is not plan:  # the plan is kept, so its id is not reused
            held = self._checks[id(plan)] = (
                plan,
                [(c.name, _compile(c.where, self)) for c in plan.cohorts],
            )
        return held[1]


@lru_cache(maxsize=4)
def _window(as_of: datetime) -> _Window:
    # The batch evaluates every subject at one instant: format its window edges once.
    return _Window(as_of)


def _stored_times(state: CohortState, name: str, cache: dict[str, list[str]]) -> list[str]:
    """The stored times of ``name``, extracted once per evaluation (leaves share events)."""
    times = cache.get(name)
    if times is None:
        times = cache[name] = [e[0] for e in state.seen.get(name, ())]
    return times


def _count(times: list[str], low: str, high: str, high_inclusive: bool = True) -> int:
    top = bisect_right(times, high) if high_inclusive else bisect_left(times, high)
    return max(0, top - bisect_left(times, low))


def _leaf(
    leaf: Criterion, state: CohortState, w: _Window, cache: dict[str, list[str]]
) -> tuple[bool, Any]:
    kind = leaf.kind
    if kind == "property":
        return all(condition_holds(c, state.props.get(c.name)) for c in leaf.conditions), {
            c.name: state.props.get(c.name) for c in leaf.conditions
        }
    if kind == "users_active_share":
        low = w.start(leaf.within)
        active = sum(1 for t in state.users.values() if low <= t <= w.end)
        share = active / len(state.users) if state.users else 0.0
        return bool(state.users) and share >= leaf.count, round(share, 6)
    if kind == "users_performed":
        low = w.start(leaf.within)
        did = state.did.get(leaf.events[0], {})
        users = sum(1 for t in did.values() if low <= t <= w.end)
        return users >= leaf.count, users
    if kind == "sequence":
        return _sequence(leaf, state, w)
    name = leaf.events[0]
    times = _stored_times(state, name, cache)
    low = w.start(leaf.within)
    last = _count(times, low, w.end)
    if kind in ("performed", "not_performed"):
        return _counting_rule(kind, leaf.op, leaf.count, last, 0, False), last
    if kind == "first_performed":
        first = state.first.get(name)
        return first is not None and low <= first[0] <= w.end, first[0] if first else None
    if kind == "regularly":
        counts = [last]
        for k in range(1, leaf.periods):
            counts.append(
                _count(times, w.start(leaf.within * (k + 1)), w.start(leaf.within * k), False)
            )
        return all(c >= leaf.count for c in counts), counts
    before = _count(times, w.start(2 * leaf.within), low, high_inclusive=False)
    if kind == "stopped":
        return _counting_rule(kind, leaf.op, leaf.count, last, before, False), {
            "previous": before,
            "last": last,
        }
    first = state.first.get(name)
    earlier = first is not None and first[0] < w.start(2 * leaf.within)
    observed = {"earlier": earlier, "previous": before, "last": last}
    return _counting_rule(kind, leaf.op, leaf.count, last, before, earlier), observed


def _counting_rule(kind: str, op: str, count: float, last: int, before: int, earlier: bool) -> bool:
    """The counting kinds' rule, shared by ``evaluate`` and ``memberships``: ``last``
    occurrences in the window, ``before`` in the window just before it, ``earlier``: the
    first occurrence predates both windows."""
    if kind == "performed":
        if op == "at_least":
            return last >= count
        return last <= count if op == "at_most" else last == count
    if kind == "not_performed":
        return last == 0
    if kind == "stopped":
        return before > 0 and last == 0
    return last > 0 and before == 0 and earlier  # restarted


def _sequence(leaf: Criterion, state: CohortState, w: _Window) -> tuple[bool, Any]:
    low = w.start(leaf.within)
    occurrences: dict[str, tuple[str, set[str]]] = {}
    for name in set(leaf.events):
        for at, event_id in state.seen.get(name, []):
            if low <= at <= w.end:
                occurrences.setdefault(event_id, (at, set()))[1].add(name)
    step = 0
    for _, names in (v for _, v in sorted(occurrences.items(), key=lambda kv: (kv[1][0], kv[0]))):
        if step < len(leaf.events) and leaf.events[step] in names:
            step += 1
    return step == len(leaf.events), step


def _node(
    node: Criterion,
    state: CohortState,
    w: _Window,
    detail: dict[str, dict[str, Any]],
    cache: dict[str, list[str]],
) -> tuple[bool, str]:
    if not node.children:
        holds, observed = _leaf(node, state, w, cache)
        detail[node.text] = {"observed": observed, "holds": holds}
        return holds, node.text
    # Every child is evaluated (each leaf's detail is reported); the first that decides names
    # the criterion: for all, the first failing; for any, the first passing.
    wanted = node.kind != "all"
    decided: str | None = None
    for child in node.children:
        holds, text = _node(child, state, w, detail, cache)
        if decided is None and holds == wanted:
            decided = text
    if decided is None:
        return not wanted, node.text
    return wanted, decided


def evaluate(state: CohortState, plan: CohortPlan, as_of: datetime) -> dict[str, Verdict]:
    """Every cohort of ``plan`` for this subject at ``as_of``."""
    window = _window(as_of)
    cache: dict[str, list[str]] = {}
    out = {}
    for cohort in plan.cohorts:
        detail: dict[str, dict[str, Any]] = {}
        member, text = _node(cohort.where, state, window, detail, cache)
        out[cohort.name] = Verdict(member, text, detail)
    return out


#: A criterion's membership test at one instant: (state, stored-times cache) -> holds.
_Check = Callable[[CohortState, dict[str, list[str]]], bool]


def _compile(node: Criterion, w: _Window) -> _Check:
    """``node``'s test at ``w`` without what ``evaluate`` reports: ``all``/``any`` stop at
    the first deciding child; the counting kinds (most criteria) have their window edges
    bound once and count with two bisections; other kinds ask ``_leaf``."""
    if node.children:
        parts = [_compile(child, w) for child in node.children]
        wanted = node.kind != "all"  # the child result that decides: any stops at a True

        def combined(state: CohortState, cache: dict[str, list[str]]) -> bool:
            for part in parts:
                if part(state, cache) == wanted:
                    return wanted
            return not wanted

        return combined
    if node.kind not in ("performed", "not_performed", "stopped", "restarted"):
        return lambda state, cache: bool(_leaf(node, state, w, cache)[0])
    kind, name, op, count = node.kind, node.events[0], node.op, node.count
    end, low, earlier = w.end, w.start(node.within), w.start(2 * node.within)

    def counted(state: CohortState, cache: dict[str, list[str]]) -> bool:
        times = _stored_times(state, name, cache)
        # Occurrences in [low, end] (low <= end, so never negative), as _leaf counts them.
        last = bisect_right(times, end) - bisect_left(times, low)
        if kind in ("performed", "not_performed"):
            return _counting_rule(kind, op, count, last, 0, False)
        before = bisect_left(times, low) - bisect_left(times, earlier)  # [earlier, low)
        first = state.first.get(name)
        return _counting_rule(
            kind, op, count, last, before, first is not None and first[0] < earlier
        )

    return counted


def memberships(state: CohortState, plan: CohortPlan, as_of: datetime) -> set[str]:
    """The cohorts of ``plan`` this subject is a member of at ``as_of``: the ``member`` of
    ``evaluate``'s verdicts (a hypothesis test holds them equal) without building the
    detail; each cohort's test is built once per instant (``_compile``)."""
    cache: dict[str, list[str]] = {}
    return {name for name, check in _window(as_of).checks(plan) if check(state, cache)}


def change_points(state: CohortState, plan: CohortPlan) -> list[datetime]:
    """Every instant at which some time-based criterion of ``plan`` may flip for this
    subject without new events (an occurrence reaching or leaving a window edge)."""
    points: set[datetime] = set()
    for cohort in plan.cohorts:
        for leaf in cohort.where.leaves():
            offsets = _offsets(leaf)
            if not offsets:
                continue
            for at in _times(leaf, state):
                moment = parse_ts(at)
                assert moment is not None, at
                points.add(moment)
                points.update(moment + offset + _MS for offset in offsets)
    return sorted(points)


def _times(leaf: Criterion, state: CohortState) -> Iterable[str]:
    if leaf.kind == "users_active_share":
        return state.users.values()
    if leaf.kind == "users_performed":
        return state.did.get(leaf.events[0], {}).values()
    times = [e[0] for name in leaf.events for e in state.seen.get(name, [])]
    return times + [state.first[n][0] for n in leaf.events if n in state.first]


def next_change(state: CohortState, plan: CohortPlan, as_of: datetime) -> datetime | None:
    """The earliest instant after ``as_of`` at which a criterion may flip, or None: the
    first of ``change_points`` after ``as_of``, found per window edge by bisecting the
    stored times (this runs for every event, ``change_points`` walks every occurrence)."""
    best: datetime | None = None
    thresholds: dict[timedelta, str] = {}  # leaves share window lengths: format each once
    for cohort in plan.cohorts:
        for leaf in cohort.where.leaves():
            offsets = _offsets(leaf)
            if not offsets:
                continue
            times = sorted(_times(leaf, state))
            # An occurrence is itself a point, and so is each edge it reaches: ``at +
            # offset + 1 ms`` is after ``as_of`` when ``at`` is after ``as_of - offset - 1 ms``.
            for offset in (-_MS, *offsets):
                threshold = thresholds.get(offset)
                if threshold is None:
                    threshold = thresholds[offset] = format_ts(as_of - offset - _MS)
                index = bisect_right(times, threshold)
                if index == len(times):
                    continue
                moment = parse_ts(times[index])
                assert moment is not None, times[index]
                point = moment + offset + _MS
                if best is None or point < best:
                    best = point
    return best


def advance(
    state: CohortState, plan: CohortPlan, as_of: datetime, event_id: str | None
) -> tuple[CohortState, list[dict[str, Any]]]:
    """Evaluate at ``as_of``; every membership that flipped becomes a change record
    (``autocap.cohort_changes``), remembered in the state so it is sent once. Also sets
    ``state.next`` (``next_change``)."""
    verdicts = evaluate(state, plan, as_of)
    new = _copy(state)
    changes = []
    for name, verdict in verdicts.items():
        was = name in state.last and state.last[name]["change"] == "enter"
        if verdict.member == was:
            continue
        change = {
            "cohort": name,
            "subject_kind": plan.of,
            "subject_id": state.subject_id,
            "change": "enter" if verdict.member else "exit",
            "at": format_ts(as_of),
            "criterion": verdict.criterion,
            "event_id": event_id,
            "detail": {text: leaf["observed"] for text, leaf in verdict.detail.items()},
        }
        new.last[name] = change
        changes.append(change)
    upcoming = next_change(new, plan, as_of)
    new.next = format_ts(upcoming) if upcoming is not None else None
    return new, changes
