"""``autocap cohort list | members | why``: cohorts as analysts see them in the catalog."""

from __future__ import annotations

from datetime import datetime

import duckdb
import orjson

from pipeline.batch.cohorts import recompute_cohorts
from pipeline.cohort_spec import Cohort
from pipeline.cohorts import cohort_plan, evaluate
from pipeline.definitions import Definitions
from pipeline.errors import QueryError
from pipeline.sqlfiles import load_sql
from pipeline.warehouse.query import QueryResult

__all__ = ["cohort_members", "explain_member", "list_cohorts"]


def _cohort(definitions: Definitions, name: str) -> Cohort:
    for cohort in definitions.cohorts:
        if cohort.name == name:
            return cohort
    known = ", ".join(c.name for c in definitions.cohorts) or "none"
    raise QueryError(f"unknown cohort {name!r} (defined in definitions.yaml: {known})")


def list_cohorts(con: duckdb.DuckDBPyConnection, definitions: Definitions) -> QueryResult:
    """Every defined cohort: whom it is of, its criteria, how many members it has now."""
    counts = dict(con.execute(load_sql("cohort/member_counts")).fetchall())
    rows = [(c.name, c.of, c.where.text, counts.get(c.name, 0)) for c in definitions.cohorts]
    return QueryResult(["cohort", "of", "where", "members"], rows)


def cohort_members(
    con: duckdb.DuckDBPyConnection, definitions: Definitions, name: str
) -> QueryResult:
    """The current members of cohort ``name``."""
    _cohort(definitions, name)
    cursor = con.execute(load_sql("cohort/members"), {"cohort": name})
    assert cursor.description is not None
    return QueryResult([d[0] for d in cursor.description], cursor.fetchall())


def explain_member(
    con: duckdb.DuckDBPyConnection,
    definitions: Definitions,
    name: str,
    subject: str,
    as_of: datetime,
) -> QueryResult:
    """Why ``subject`` is (or is not) in ``name``: the criterion and event of its entry,
    then each criterion's count against its threshold, recomputed from the lake at
    ``as_of`` with the stream's rules (for every stream id of the subject)."""
    cohort = _cohort(definitions, name)
    rows: list[tuple[object, ...]] = []
    entry = con.execute(load_sql("cohort/entry"), {"cohort": name, "subject": subject}).fetchone()
    if entry is None:
        rows.append(("not a member", None, None, None, None))
    else:
        since, criterion, event_id = entry
        rows.append(("entered", criterion, since.isoformat(), event_id, True))
    plan = cohort_plan(definitions, cohort.of)
    empty = cohort_plan(Definitions(), "person" if cohort.of == "account" else "account")
    persons, accounts = (plan, empty) if cohort.of == "person" else (empty, plan)
    ids = [
        r[0] for r in con.execute(load_sql("cohort/stream_ids"), {"subject": subject}).fetchall()
    ]
    states = recompute_cohorts(con, persons, accounts)
    found = False
    for stream_id in sorted(ids):
        state = states.get((cohort.of, stream_id))
        if state is None:
            continue
        found = True
        verdict = evaluate(state, plan, as_of)[name]
        rows.append(("now", verdict.criterion, stream_id, None, verdict.member))
        for text, leaf in verdict.detail.items():
            observed = orjson.dumps(leaf["observed"]).decode()
            rows.append(("criterion", text, observed, None, leaf["holds"]))
    if not found and entry is None:
        raise QueryError(f"no {cohort.of} {subject!r} in the warehouse")
    return QueryResult(["row", "criterion", "value", "event_id", "holds"], rows)
