"""Cohort state recomputed in batch from the lake with the stream's own pure rules.

Persons: each stream person id's events in event-time order, folded at once with
``fold_history`` (equal to one ``fold_cohorts`` call per event), then its latest profile
through ``with_record``. Accounts: the facts the person stage would have
sent (``account_facts``: one per event per account the person had joined by then, the
event's own account included), then the account's latest record. The states are the same
JSON values the stream keeps, so they can also seed it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import duckdb
import orjson

from pipeline.cohorts import CohortPlan, CohortState, account_facts, fold_history, with_record
from pipeline.sqlfiles import load_sql
from pipeline.timeutil import format_ts

__all__ = ["recompute_cohorts"]

_BATCH_ROWS = 20_000


def _rows(con: duckdb.DuckDBPyConnection, name: str) -> Iterator[dict[str, Any]]:
    reader = con.sql(load_sql(f"verify/{name}")).to_arrow_reader(_BATCH_ROWS)
    assert reader is not None  # a SELECT always has a result
    for batch in reader:
        yield from batch.to_pylist()


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    record = dict(row)
    for column in ("traits", "properties"):
        if isinstance(record.get(column), str):
            record[column] = orjson.loads(record[column])
    return record


def _histories(con: duckdb.DuckDBPyConnection) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each stream person id with its events (the query sorts by person, then time)."""
    person: str | None = None
    events: list[dict[str, Any]] = []
    for row in _rows(con, "cohort_events"):
        if row["person_id"] != person:
            if person is not None:
                yield person, events
            person, events = str(row["person_id"]), []
        events.append(
            {
                "person_id": person,
                "event_id": row["event_id"],
                "event": row["event"],
                "defined_events": row["defined_events"] or [],
                "timestamp": format_ts(row["timestamp"]),
                "account_id": row["account_id"],
            }
        )
    if person is not None:
        yield person, events


def recompute_cohorts(
    con: duckdb.DuckDBPyConnection, persons: CohortPlan, accounts: CohortPlan
) -> dict[tuple[str, str], CohortState]:
    """(subject kind, stream subject id) -> its cohort state, from the catalog on ``con``."""
    states: dict[tuple[str, str], CohortState] = {}
    facts: dict[str, list[dict[str, Any]]] = {}  # account -> what its members told it
    for person, events in _histories(con):
        if persons.cohorts:
            key = ("person", person)
            states[key] = fold_history(states.get(key), person, events, persons)
        if not accounts.cohorts:
            continue
        mine: list[str] = []
        for event in events:
            if event["account_id"] and event["account_id"] not in mine:
                mine.append(str(event["account_id"]))
            profile = {"person_id": person, "account_ids": mine}
            for fact in account_facts(event, profile, accounts):
                facts.setdefault(fact["account_id"], []).append(fact)
    # The account fold is order-free, so each account's facts fold at once too.
    for account, told in facts.items():
        key = ("account", account)
        states[key] = fold_history(states.get(key), account, told, accounts)
    for kind, plan, sql, column in (
        ("person", persons, "cohort_profiles", "person_id"),
        ("account", accounts, "cohort_accounts", "account_id"),
    ):
        if not plan.cohorts:
            continue
        for row in _rows(con, sql):
            key = (kind, str(row[column]))
            states[key], _ = with_record(states.get(key), key[1], _record(row), plan)
    return states
