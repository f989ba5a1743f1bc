"""The keys of one person: what ``autocap forget`` looks for in every row and topic."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from pipeline.errors import ForgetError
from pipeline.sqlfiles import load_sql

__all__ = ["MAX_ID_CHARS", "PersonKeys", "check_id", "resolve_keys"]

MAX_ID_CHARS = 512
#: Row columns that name a person, and the key kinds each may hold. An anonymous id that
#: became a user shows up as ``previous_id`` on its alias.
ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "person_id": ("person_id",),
    "anonymous_id": ("anonymous_id",),
    "user_id": ("user_id",),
    "previous_id": ("anonymous_id", "user_id"),
    "from_person": ("person_id",),
    "to_person": ("person_id",),
    # cohort_changes, segment_<name> and segment_history: a person (or an account) id.
    "subject_id": ("person_id",),
    "event_id": ("event_id",),
}


@dataclass(frozen=True)
class PersonKeys:
    """Every id of one person, by kind (``person_id``, ``anonymous_id``, ``user_id``,
    ``event_id``), and the accounts they were a member of (``account_id``: not removed,
    they drop the person from their members)."""

    asked: str
    by_kind: dict[str, frozenset[str]] = field(default_factory=dict)

    def of(self, *kinds: str) -> frozenset[str]:
        """The ids of these kinds, together."""
        return frozenset().union(*(self.by_kind.get(k, frozenset()) for k in kinds))

    @property
    def people_ids(self) -> frozenset[str]:
        """Every id that is not an event id: what the collector and the changelogs key on."""
        return self.of("person_id", "anonymous_id", "user_id") | {self.asked}

    def for_column(self, column: str) -> frozenset[str]:
        """The ids a row's ``column`` must not hold."""
        kinds = ID_COLUMNS.get(column, ())
        found = self.of(*kinds)
        return found | {self.asked} if column != "event_id" else found


def check_id(raw: str) -> str:
    """The id as given, or ``ForgetError`` naming what is wrong with it."""
    if not raw or not raw.strip():
        raise ForgetError("forget: the id is empty (give a person_id, user_id or anonymous_id)")
    if len(raw) > MAX_ID_CHARS:
        raise ForgetError(f"forget: the id is longer than {MAX_ID_CHARS} characters")
    if "\x00" in raw:
        raise ForgetError("forget: the id contains a NUL character")
    return raw


def resolve_keys(con: duckdb.DuckDBPyConnection, asked: str) -> PersonKeys:
    """Look the id up in the warehouse catalog open on ``con``."""
    rows = con.execute(load_sql("forget/person_keys"), {"id": asked}).fetchall()
    by_kind: dict[str, set[str]] = {}
    for kind, value in rows:
        by_kind.setdefault(kind, set()).add(value)
    return PersonKeys(asked, {k: frozenset(v) for k, v in by_kind.items()})
