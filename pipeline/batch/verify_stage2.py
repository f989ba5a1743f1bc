"""``autocap verify`` for stage 2: every profile and account recomputed from the lake's events
(``pipeline.batch.stage2``) and compared with the stream's latest ones in the lake.

Known, legitimate differences (reported, not failed on unless ``--strict``):

- ``recent``: the person (or a member of the account) has an event received within the sink
  slack of the newest one: its latest profile may not be in the lake yet.
- Trait order (``traits`` and what reads them: email domain and kind, ``case`` properties,
  an account's titles, roles and firmographics): ``$set`` applies in arrival order, which
  the lake cannot always recover: ``out_of_order`` (a copy redelivered after later events,
  or an event stage 1 marked late), ``many_devices`` (the person's events came through
  several devices, hence several stage-1 partitions, so they interleaved in any order) or
  ``same_instant`` (two events with one arrival time and one event time).

Everything else (counts, first/last seen, sessions, built-ins, counts, sums, windows and
scores of custom properties, account roll-ups) is order-free and must be equal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import duckdb
import orjson

from pipeline.accounts import account_record
from pipeline.batch.stage2 import PersonHistory, recompute_stage2
from pipeline.batch.verify import VerifyReport
from pipeline.definitions import Definitions
from pipeline.profiles import profile_record
from pipeline.sqlfiles import load_sql
from pipeline.timeutil import format_ts

__all__ = ["verify_stage2"]

#: Profile fields that read traits, so trait order explains them too.
_TRAIT_FIELDS = {"traits", "email_domain", "email_kind"}
#: Account fields that do not depend on any trait's order.
_ORDER_FREE_ACCOUNT = {
    "account_id",
    "version",
    "members",
    "active_users_7d",
    "active_users_30d",
    "lead_score",
    "last_activity",
}


def verify_stage2(
    con: duckdb.DuckDBPyConnection,
    report: VerifyReport,
    definitions: Definitions,
    slack: timedelta,
) -> None:
    """Add the ``profiles`` and ``accounts`` checks to ``report``."""
    batch = recompute_stage2(con, definitions)
    newest = max(
        (h.last_received for _, h in batch.profiles.values() if h.last_received), default=None
    )
    recent_since = newest - slack if newest is not None else None
    stream_profiles = _rows(con, "verify/profiles", "person_id")
    check = report.check("profiles")
    why_person: dict[str, str | None] = {}
    case = {d.name for d in definitions.properties if d.kind == "case"}
    for person, (state, history) in batch.profiles.items():
        why = _person_why(history, recent_since)
        why_person[person] = why
        mine = profile_record(state, definitions)
        theirs = stream_profiles.pop(person, None)
        check.compared += 1
        if theirs is None:
            recent = why if why == "recent" else None
            check.differ("missing_in_stream", {"person_id": person}, recent)
            continue
        for name, want, got in _fields(mine, theirs):
            order_bound = name in _TRAIT_FIELDS or name.removeprefix("properties.") in case
            explained = why if why == "recent" or order_bound else None
            example = {"person_id": person, "field": name, "stream": got, "batch": want}
            check.differ(name, example, explained)
    for person in stream_profiles:
        check.differ("extra_in_stream", {"person_id": person}, None)
    _verify_accounts(con, report, batch.accounts, batch.group_sources, batch.members, why_person)


def _person_why(history: PersonHistory, recent_since: datetime | None) -> str | None:
    if recent_since is not None and history.last_received and history.last_received >= recent_since:
        return "recent"
    if history.redelivered or history.late:
        return "out_of_order"
    if len(history.devices) > 1:
        return "many_devices"
    return "same_instant" if history.same_arrival else None


def _verify_accounts(
    con: duckdb.DuckDBPyConnection,
    report: VerifyReport,
    accounts: Mapping[str, Any],
    group_sources: Mapping[str, set[str]],
    members: Mapping[str, set[str]],
    why_person: Mapping[str, str | None],
) -> None:
    stream = _rows(con, "verify/accounts", "account_id")
    check = report.check("accounts")
    for account, state in accounts.items():
        whys = {w for p in members.get(account, set()) if (w := why_person.get(p))}
        recent = "recent" if "recent" in whys else None
        sources = group_sources.get(account, set())
        order = next(iter(sorted(whys)), None)
        if len(sources - {"redelivered"}) > 1 or "redelivered" in sources:
            order = order or "out_of_order"
        mine = account_record(state)
        theirs = stream.pop(account, None)
        check.compared += 1
        if theirs is None:
            check.differ("missing_in_stream", {"account_id": account}, recent)
            continue
        for name, want, got in _fields(mine, theirs):
            explained = recent or (order if name not in _ORDER_FREE_ACCOUNT else None)
            example = {"account_id": account, "field": name, "stream": got, "batch": want}
            check.differ(name, example, explained)
    for account in stream:
        check.differ("extra_in_stream", {"account_id": account}, None)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, key: str) -> dict[str, dict[str, Any]]:
    cursor = con.execute(load_sql(sql))
    names = [d[0] for d in cursor.description or ()]
    return {row[names.index(key)]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def _fields(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, batch, stream) for every field that differs; custom properties one by one.
    Versions are not compared: a seed raises them without an event (event counts are)."""
    out = []
    for name, want in mine.items():
        if name == "version":
            continue
        got = _plain(theirs.get(name))
        if name in ("traits", "properties") and isinstance(got, str):
            got = orjson.loads(got)
        if name == "properties" and isinstance(got, dict):
            for prop, value in want.items():
                if not _same(value, got.get(prop)):
                    out.append((f"properties.{prop}", value, got.get(prop)))
            continue
        if not _same(want, got):
            out.append((name, want, got))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_ts(value)
    return value


def _same(a: Any, b: Any) -> bool:
    # Scores decay through floats: the stream and the batch add in different orders.
    floats = isinstance(a, float) or isinstance(b, float)
    if floats and isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
