"""Stage 2 in batch over the lake, with the stream's own pure folds.

Each profile key's events (the person_id stage 1 answered) are folded with ``fold_profile``
in arrival order (received_at, then event time, then event_id): the order the stream most
likely saw them. Only trait ``$set`` order depends on it; every built-in and custom property
is order-free. Accounts are folded from every profile's updates (``account_updates``): group
calls in the same arrival order, and each member's latest snapshot (the highest version
wins, whatever the order). ``autocap verify`` compares the results with the lake's latest
profiles and accounts; ``autocap backfill-state`` seeds the stream from the same folds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import orjson

from pipeline.accounts import AccountState, account_updates, fold_account
from pipeline.definitions import Definitions
from pipeline.profiles import ProfileState, fold_profile, profile_record
from pipeline.sqlfiles import load_sql
from pipeline.timeutil import format_ts

__all__ = ["PersonHistory", "Stage2Result", "person_histories", "recompute_stage2"]

_BATCH_ROWS = 20_000
_JSON = ("context", "properties", "traits", "elements")


@dataclass
class PersonHistory:
    """One profile key's lake events in the stream's shape, and what the lake says of how
    they arrived."""

    person_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    devices: set[str] = field(default_factory=set)
    redelivered: bool = False  # a copy arrived again after later events (a replay)
    late: bool = False  # stage 1 marked an event late_event
    same_arrival: bool = False  # two events with one arrival and one event time
    last_received: datetime | None = None


def person_histories(
    con: duckdb.DuckDBPyConnection, definitions: Definitions
) -> Iterator[PersonHistory]:
    """Each profile key's events, streamed (one person in memory at a time). Defined events
    are tagged with the current definitions: a definition applies to all history."""
    reader = con.sql(load_sql("verify/person_events")).to_arrow_reader(_BATCH_ROWS)
    assert reader is not None  # a SELECT always has a result
    history: PersonHistory | None = None
    previous: tuple[Any, Any] | None = None
    for batch in reader:
        for row in batch.to_pylist():
            if history is None or row["person_id"] != history.person_id:
                if history is not None:
                    yield history
                history, previous = PersonHistory(str(row["person_id"])), None
            arrival = (row["received_at"], row["timestamp"])
            history.same_arrival |= arrival == previous
            previous = arrival
            history.redelivered |= row["last_received_at"] != row["received_at"]
            history.late |= "late_event" in (row["flags"] or ())
            history.devices.add(str(row["anonymous_id"] or f"user:{row['user_id']}"))
            history.last_received = max(filter(None, (history.last_received, row["received_at"])))
            history.events.append(_event(row, definitions))
    if history is not None:
        yield history


def _event(row: dict[str, Any], definitions: Definitions) -> dict[str, Any]:
    event = {k: v for k, v in row.items() if k not in ("last_received_at", "flags")}
    for name in _JSON:
        event[name] = orjson.loads(row[name]) if row[name] else None
    event["timestamp"] = format_ts(row["timestamp"])
    event["received_at"] = format_ts(row["received_at"])
    event["defined_events"] = definitions.defined_events(event)
    return event


@dataclass
class Stage2Result:
    """Profiles (with how their events arrived) and accounts, as the batch folds them."""

    profiles: dict[str, tuple[ProfileState, PersonHistory]] = field(default_factory=dict)
    accounts: dict[str, AccountState] = field(default_factory=dict)
    #: account -> the devices its group calls came from, and whether any was redelivered.
    group_sources: dict[str, set[str]] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)


def recompute_stage2(con: duckdb.DuckDBPyConnection, definitions: Definitions) -> Stage2Result:
    """Fold every profile and account from the lake's events (events are dropped once
    folded; the profiles' states stay)."""
    result = Stage2Result()
    groups: list[tuple[Any, ...]] = []
    for history in person_histories(con, definitions):
        state: ProfileState | None = None
        for event in history.events:
            state, _ = fold_profile(state, event, definitions)
            if event["type"] == "group" and event.get("account_id"):
                nobody = {"person_id": history.person_id, "version": 0, "last_seen": None}
                update = account_updates(event, nobody)[0]  # the group call's own update
                order = (event["received_at"], event["timestamp"], event["event_id"])
                groups.append((*order, update, history))
        if state is None:
            continue
        history.events = []
        result.profiles[history.person_id] = (state, history)
        member = profile_record(state, definitions)
        for update in account_updates({}, member):
            account = update["account_id"]
            result.accounts[account], _ = fold_account(result.accounts.get(account), update)
            result.members.setdefault(account, set()).add(history.person_id)
    for *_, update, history in sorted(groups, key=lambda g: g[:3]):
        account = update["account_id"]
        result.accounts[account], _ = fold_account(result.accounts.get(account), update)
        sources = result.group_sources.setdefault(account, set())
        sources |= history.devices | ({"redelivered"} if history.redelivered else set())
    return result
