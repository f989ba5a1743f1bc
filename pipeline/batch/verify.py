"""``autocap verify``: recompute stage 1 in batch over the warehouse and compare it with what
the stream produced.

Compared, per device (the stream's state key): each event's ``session_id`` and ``person_id``
as stored in the lake (before the warehouse re-attributes persons through the ledger); the
identity ledger entries each event made; and each closed session's event count, start and
end. Each comparison is a ``Check``; stage 2's profiles and accounts are two more
(``pipeline.batch.verify_stage2``, when the definitions are given).

Cohorts (``cohorts`` check): every subject's cohort state recomputed from the lake with the
stream's rules (``pipeline.batch.cohorts``), evaluated at the verify instant, against the
stream's current members (``cohort_history``'s latest change per stream key). A subject
whose membership may have flipped within the cohort timer interval plus a minute for the
sink before the instant (a ``change_points`` instant, or its newest event) is reported as an
expected ``timing`` difference: the stream may not have evaluated or stored it yet.

Known, legitimate differences are reported but do not fail verify (``--strict`` fails on
them too):

- ``out_of_order``: the device's events reached the stream out of event-time order (an event
  received after a later one, a redelivered copy, or one the stream marked ``late_event``).
  The stream places such events by its documented rule; the batch places them by time.
- ``same_instant``: the device has events at the same millisecond that arrived together, so
  the lake cannot tell in which order the stream saw them (the batch uses event_id order).
- Sessions still open are not compared: only sessions that ended more than the inactivity
  timeout plus one session-timer interval (and a minute for the sink) before the newest
  event in the lake, i.e. sessions the stream has closed and summarised.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import orjson

from pipeline.batch.cohorts import recompute_cohorts
from pipeline.batch.stage1 import DeviceResult, recompute_device
from pipeline.cohorts import (
    CohortPlan,
    CohortState,
    change_points,
    cohort_plan,
    evaluate,
    memberships,
)
from pipeline.definitions import Definitions, load_definitions
from pipeline.errors import QueryError
from pipeline.sessions import SessionRules
from pipeline.settings import Settings
from pipeline.sqlfiles import load_sql
from pipeline.timeutil import format_ts, parse_ts, utc_now
from pipeline.warehouse.query import connect_readonly

__all__ = ["Check", "VerifyReport", "verify_cohorts", "verify_connection", "verify_warehouse"]

EXAMPLES = 5
_SINK_SLACK = timedelta(minutes=1)
_BATCH_ROWS = 20_000


@dataclass
class Check:
    """One thing compared: how many, how many skipped, and the differences by kind."""

    name: str
    compared: int = 0
    skipped: int = 0
    differences: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    explained_examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def differ(self, kind: str, example: dict[str, Any], why: str | None) -> None:
        """Count a difference; ``why`` names the known cause that explains it, if any."""
        if why is None:
            self.differences[kind] += 1
            shown = self.examples.setdefault(kind, [])
        else:
            self.expected[kind] += 1
            shown = self.explained_examples.setdefault(kind, [])
            example = {**example, "explained_by": why}
        if len(shown) < EXAMPLES:
            shown.append(example)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "compared": self.compared,
            "skipped": self.skipped,
            "differences": dict(self.differences),
            "expected_differences": dict(self.expected),
            "examples": self.examples,
            "explained_examples": self.explained_examples,
        }


@dataclass
class VerifyReport:
    """Totals, one ``Check`` per compared output, and the verdict."""

    events: int = 0
    devices: int = 0
    late_events: int = 0
    devices_explained: Counter[str] = field(default_factory=Counter)
    newest_event: str | None = None
    sessions_closed_before: str | None = None
    checks: dict[str, Check] = field(default_factory=dict)

    def check(self, name: str) -> Check:
        """The check called ``name`` (created on first use)."""
        return self.checks.setdefault(name, Check(name))

    def unexplained(self) -> int:
        """Differences no known cause explains."""
        return sum(sum(c.differences.values()) for c in self.checks.values())

    def explained(self) -> int:
        """Differences explained by out-of-order or same-instant arrival."""
        return sum(sum(c.expected.values()) for c in self.checks.values())

    def failed(self, strict: bool = False) -> bool:
        """Whether verify should exit non-zero."""
        return self.unexplained() > 0 or (strict and self.explained() > 0)

    def verdict(self, strict: bool = False) -> str:
        """One line: equal, or how many differences of which kinds."""
        if not self.failed(strict):
            extra = f" ({self.explained()} explained differences)" if self.explained() else ""
            return f"stream and batch agree on {self.events} events{extra}"
        kinds = Counter[str]()
        for c in self.checks.values():
            kinds.update(c.differences)
            if strict:
                kinds.update(c.expected)
        listed = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
        return f"stream and batch differ: {listed}"

    def to_json(self, strict: bool = False) -> dict[str, Any]:
        """JSON-ready form (``autocap verify --format json``)."""
        return {
            "verdict": "differ" if self.failed(strict) else "equal",
            "summary": self.verdict(strict),
            "events": self.events,
            "devices": self.devices,
            "late_events": self.late_events,
            "devices_explained": dict(self.devices_explained),
            "newest_event": self.newest_event,
            "sessions_closed_before": self.sessions_closed_before,
            "checks": {name: c.to_json() for name, c in self.checks.items()},
        }


def verify_warehouse(settings: Settings) -> VerifyReport:
    """Verify the warehouse at ``settings.warehouse_path`` with the configured rules."""
    rules = SessionRules(
        timedelta(minutes=settings.session_inactivity_minutes),
        timedelta(hours=settings.session_max_hours),
    )
    settle = timedelta(seconds=settings.session_timer_s) + _SINK_SLACK
    definitions = load_definitions(settings.definitions_path)
    cohort_settle = timedelta(seconds=settings.cohort_timer_s) + _SINK_SLACK
    con = connect_readonly(settings.warehouse_path)
    try:
        report = verify_connection(con, rules, settle)
        if definitions.cohorts:
            verify_cohorts(report, con, definitions, utc_now(), cohort_settle)
        if settings.worker_stage2:
            # Imported here: stage 2's verify imports this module's Check and VerifyReport.
            from pipeline.batch.verify_stage2 import verify_stage2

            verify_stage2(con, report, definitions, settle)
        return report
    except duckdb.Error as exc:
        raise QueryError(f"verify: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def verify_connection(
    con: duckdb.DuckDBPyConnection, rules: SessionRules, settle: timedelta = timedelta(0)
) -> VerifyReport:
    """Verify the catalog open on ``con`` (its ``lake_*`` views)."""
    report = VerifyReport()
    newest = con.execute(load_sql("verify/newest_event")).fetchone()
    cutoff: datetime | None = None
    if newest is not None and newest[0] is not None:
        cutoff = newest[0] - rules.inactivity - settle
        report.newest_event = format_ts(newest[0])
        report.sessions_closed_before = format_ts(cutoff)
    stream_sessions = {row[0]: row for row in con.execute(load_sql("verify/sessions")).fetchall()}
    stream_ledger: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for event_id, *entry in con.execute(load_sql("verify/identities")).fetchall():
        stream_ledger[event_id].append(tuple(entry))
    events, ledger, sessions = (report.check(n) for n in ("events", "identities", "sessions"))
    explained: dict[str, str] = {}
    for device, rows in _devices(con):
        report.devices += 1
        report.events += len(rows)
        report.late_events += sum("late_event" in (r["flags"] or ()) for r in rows)
        why = _order_problem(rows)
        if why is not None:
            explained[device] = why
        batch = recompute_device(map(_raw_record, rows), rules)
        _compare_events(events, device, rows, batch, why)
        _compare_ledger(ledger, device, batch, stream_ledger, why)
        _compare_sessions(sessions, device, batch, stream_sessions, cutoff, why)
    report.devices_explained.update(explained.values())
    for event_id, entries in stream_ledger.items():  # ledger entries of no event in the lake
        for kind, source, target, device in entries:
            example = {"event_id": event_id, "kind": kind, "from": source, "to": target}
            ledger.differ("extra_in_stream", example, explained.get(device))
    for session_id, device, count, _start, end in stream_sessions.values():
        if cutoff is None or end is None or end >= cutoff:
            sessions.skipped += 1
            continue
        example = {"session_id": session_id, "device": device, "events": count}
        sessions.differ("extra_in_stream", example, explained.get(device))
    return report


def _devices(con: duckdb.DuckDBPyConnection) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each device's rows, streamed in batches (one device in memory at a time)."""
    reader = con.sql(load_sql("verify/events")).to_arrow_reader(_BATCH_ROWS)
    assert reader is not None  # a SELECT always has a result
    device: str | None = None
    rows: list[dict[str, Any]] = []
    for batch in reader:
        for row in batch.to_pylist():
            if row["device"] != device:
                if device is not None:
                    yield device, rows
                device, rows = row["device"], []
            rows.append(row)
    if device is not None:
        yield device, rows


def _raw_record(row: dict[str, Any]) -> dict[str, Any]:
    """A lake row back in the raw topic's shape (what stage 1 was given)."""
    return {
        "event_id": row["event_id"],
        "type": row["type"],
        "event": row["event"],
        "anonymous_id": row["anonymous_id"],
        "user_id": row["user_id"],
        "previous_id": row["previous_id"],
        "group_id": row["account_id"],
        "timestamp": format_ts(row["timestamp"]),
        "received_at": format_ts(row["received_at"]),
        "context": orjson.loads(row["context"]) if row["context"] else {},
    }


def _order_problem(rows: list[dict[str, Any]]) -> str | None:
    """Why the stream may rightly differ from the batch on this device, if it may."""
    latest_arrival: datetime | None = None
    same_instant = False
    previous: dict[str, Any] | None = None
    for row in rows:  # in (timestamp, event_id) order
        if "late_event" in (row["flags"] or ()):
            return "out_of_order"
        if latest_arrival is not None and row["received_at"] < latest_arrival:
            return "out_of_order"
        arrived = row["last_received_at"]
        latest_arrival = arrived if latest_arrival is None else max(latest_arrival, arrived)
        if previous is not None and (previous["timestamp"], previous["received_at"]) == (
            row["timestamp"],
            row["received_at"],
        ):
            same_instant = True
        previous = row
    return "same_instant" if same_instant else None


def _compare_events(
    check: Check, device: str, rows: list[dict[str, Any]], batch: DeviceResult, why: str | None
) -> None:
    stored = {r["event_id"]: r for r in rows}
    for answer in batch.answers:
        row = stored[answer.event_id]
        check.compared += 1
        for name, mine in (("session_id", answer.session_id), ("person_id", answer.person_id)):
            if row[name] != mine:
                example = {"event_id": answer.event_id, "device": device, "stream": row[name]}
                check.differ(name, {**example, "batch": mine}, why)


def _compare_ledger(
    check: Check,
    device: str,
    batch: DeviceResult,
    stream: dict[str, list[tuple[Any, ...]]],
    why: str | None,
) -> None:
    mine: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for entry in batch.identities:
        mine[entry["event_id"]].append((entry["kind"], entry["from_person"], entry["to_person"]))
    for answer in batch.answers:
        theirs = Counter(tuple(e[:3]) for e in stream.pop(answer.event_id, []))
        ours = Counter(mine.get(answer.event_id, []))
        check.compared += sum(ours.values())
        for kind, diff in (
            ("missing_in_stream", ours - theirs),
            ("extra_in_stream", theirs - ours),
        ):
            for made in diff.elements():
                example = {"event_id": answer.event_id, "device": device, "kind": made[0]}
                check.differ(kind, {**example, "from": made[1], "to": made[2]}, why)


def _compare_sessions(
    check: Check,
    device: str,
    batch: DeviceResult,
    stream: dict[str, tuple[Any, ...]],
    cutoff: datetime | None,
    why: str | None,
) -> None:
    for mine in batch.sessions:
        theirs = stream.pop(mine["session_id"], None)
        end = parse_ts(mine["end"])
        if cutoff is None or end is None or end >= cutoff:
            check.skipped += 1  # still open: its summary may not be final yet
            continue
        check.compared += 1
        example = {"session_id": mine["session_id"], "device": device}
        if theirs is None:
            check.differ("missing_in_stream", {**example, "batch_events": mine["events"]}, why)
            continue
        _, _, count, start, stream_end = theirs
        got = {"events": count, "start": format_ts(start), "end": format_ts(stream_end)}
        want = {k: mine[k] for k in got}
        if got != want:
            check.differ("summary", {**example, "stream": got, "batch": want}, why)


def verify_cohorts(
    report: VerifyReport,
    con: duckdb.DuckDBPyConnection,
    definitions: Definitions,
    as_of: datetime,
    settle: timedelta,
) -> None:
    """Add the ``cohorts`` check: batch membership at ``as_of`` against the stream's."""
    check = report.check("cohorts")
    plans = {kind: cohort_plan(definitions, kind) for kind in ("person", "account")}
    states = recompute_cohorts(con, plans["person"], plans["account"])
    stream = {tuple(row) for row in con.execute(load_sql("verify/cohort_members")).fetchall()}
    since = as_of - settle
    for (kind, subject), state in states.items():
        plan = plans[kind]
        members = memberships(state, plan, as_of)
        for cohort in plan.cohorts:
            name = cohort.name
            check.compared += 1
            theirs = (name, kind, subject) in stream
            stream.discard((name, kind, subject))
            mine = name in members
            if theirs == mine:
                continue
            # Only a difference needs the deciding criterion and the timing question.
            why = "timing" if _recently_changed(state, plan, since, as_of) else None
            example = {"cohort": name, "subject_kind": kind, "subject_id": subject}
            example["criterion"] = evaluate(state, plan, as_of)[name].criterion
            check.differ("missing_in_stream" if mine else "extra_in_stream", example, why)
    defined = {c.name for c in definitions.cohorts}
    for name, kind, subject in sorted(stream):  # members the batch knows nothing of
        if name in defined:
            example = {"cohort": name, "subject_kind": kind, "subject_id": subject}
            check.differ("extra_in_stream", example, None)


def _recently_changed(
    state: CohortState, plan: CohortPlan, since: datetime, until: datetime
) -> bool:
    newest = parse_ts(state.newest)
    if newest is not None and since < newest <= until:
        return True
    return any(since < point <= until for point in change_points(state, plan))
