"""Funnel inputs: (entity, time, code) arrays from the lake, deduplicated by event_id.

Funnels without a breakdown read the events index (``sql/funnel/entries_indexed.sql``:
integers in name-sorted row groups, plus the lake files not indexed yet): every copy of the
events named by a step or an exclusion, with 64-bit hashes of event_id and person, time and
receive time; one copy per event hash is kept, the earliest received as in ``events``.

A breakdown by a person's or account's property (``person.country``, ``account.traits.tier``)
keeps the index path: one value per entity is looked up (``sql/funnel/entity_values.sql``)
and given to its step-1 entries. A breakdown by an event's property needs the lake's
columns (``sql/funnel/entries.sql``): every copy is read with an event_id hash, and,
duplicates being rare (crash replays), only the event_ids seen more than once are read
again, deduplicated exactly (earliest ``received_at`` per event_id) by
``sql/funnel/entries_deduplicated.sql``; their rows replace the copies. Funnels whose steps
are defined events take that exact path for every event (copies may disagree on defined
events). The time range is applied last, on the kept copies.

Entities and, on the index path, events are told apart by a 64-bit hash of their id: two of
``n`` ids collide with probability about ``n² / 2⁶⁵`` (3e-8 for a million).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pipeline.errors import FunnelError
from pipeline.sqlfiles import load_sql
from pipeline.warehouse.funnel_spec import FunnelSpec

__all__ = ["Entries", "defined_events_match", "fetch_entries", "isin_sorted"]

_MIX = np.uint64(0x9E3779B97F4A7C15)  # spreads a code over a hash's bits
#: entries_indexed.sql's person hash of an event without a person (a real person's id
#: hashes to it with odds 2⁻⁶⁴).
_NO_PERSON = np.uint64(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Entries:
    """One entry per (event, funnel code): entity hashes, ms times, codes, the breakdown
    value of step-1 entries (``None`` without a breakdown) and event_id hashes."""

    entity: npt.NDArray[np.uint64]
    ts: npt.NDArray[np.int64]
    code: npt.NDArray[np.int8]
    breakdown: pa.Array | None
    event: npt.NDArray[np.uint64]


@dataclass(frozen=True)
class _Rows:
    event: npt.NDArray[np.uint64]
    entity: npt.NDArray[np.uint64]
    ts: npt.NDArray[np.int64]
    code: npt.NDArray[np.int8]
    breakdown: pa.Array | None

    def where(self, keep: npt.NDArray[np.bool_]) -> _Rows:
        value = None if self.breakdown is None else self.breakdown.filter(pa.array(keep))
        return _Rows(self.event[keep], self.entity[keep], self.ts[keep], self.code[keep], value)


def fetch_entries(
    conn: duckdb.DuckDBPyConnection,
    spec: FunnelSpec,
    entities: npt.NDArray[np.uint64] | None = None,
    tagged: bool | None = None,
) -> Entries:
    """Read ``spec``'s entries from the catalog behind ``conn``; with ``entities``, only
    those of the entities with these hashes (``hash(person)`` or ``hash(account)``).

    ``tagged``: whether the materializer's tags may name a step or exclusion (``None``:
    look; the materializer knows, its tags only carry its definitions' names)."""
    source, path = spec.breakdown_source
    names = [*spec.steps, *(e.event for e in spec.exclusions)]
    params: dict[str, Any] = {
        "names": names,
        "strict": spec.mode == "strict",
        "by": spec.by,
        "breakdown_source": source,
        "breakdown_path": path,
        "entities": None if entities is None else entities.tolist(),
    }
    exact = params | {"steps": list(spec.steps)}
    try:
        if defined_events_match(conn, names, tagged):
            rows = _exact_rows(conn, exact | {"event_hashes": None}, spec)
        elif spec.breakdown and not spec.entity_breakdown:  # needs the lake's columns
            table = conn.sql(load_sql("funnel/entries"), params=params).to_arrow_table()
            rows = _named_rows(table, spec)
            rows = _deduplicate(conn, rows, exact, spec)
        else:
            rows = _indexed_rows(conn, spec, entities)
        if spec.entity_breakdown:
            keys = ("by", "breakdown_source", "breakdown_path")
            rows = _with_entity_values(conn, rows, {k: params[k] for k in keys})
    except duckdb.CatalogException as exc:
        raise FunnelError(
            f"the warehouse has no funnel inputs ({str(exc).splitlines()[0]}): republish it "
            "with this autocap version (`autocap up` or `autocap sink` does)"
        ) from None
    rows = _in_range(rows, spec.since, spec.until)
    return Entries(rows.entity, rows.ts, rows.code, rows.breakdown, rows.event)


def defined_events_match(
    conn: duckdb.DuckDBPyConnection, names: list[str], tagged: bool | None = None
) -> bool:
    """Whether a funnel of ``names`` must take the exact path: some event's defined events
    (stage 1's, or the materializer's tags; ``tagged`` as for ``fetch_entries``) may name
    one of them."""

    def holds(check: str) -> bool:
        return bool(conn.sql(load_sql(check), params={"names": names}).fetchall()[0][0])

    # The materializer's tags first (small); then stage 1's: the footer check is nearly
    # free, and the scan runs only when the footers allow a match.
    if holds("funnel/defined_tagged") if tagged is None else tagged:
        return True
    return holds("funnel/defined_possible") and holds("funnel/defined_matches")


def _indexed_rows(
    conn: duckdb.DuckDBPyConnection, spec: FunnelSpec, entities: npt.NDArray[np.uint64] | None
) -> _Rows:
    """``entries.sql``'s rows (no breakdown) from the events index, one copy per event.

    Copies are told apart by event_id hash, and the earliest received (then earliest in
    time) is kept, as ``events`` keeps it; then persons are re-attributed through
    ``person_merges`` (and mapped to accounts) here: a join with that recursive view in
    the scan's query costs DuckDB several times the scan itself."""
    names = [*spec.steps, *(e.event for e in spec.exclusions)]
    params = {"names": names, "strict": spec.mode == "strict"}
    table = conn.sql(load_sql("funnel/entries_indexed"), params=params).to_arrow_table()
    event = _numbers(table, "event_hash", np.uint64)
    entity = _numbers(table, "person_hash", np.uint64)
    ts = _numbers(table, "ts", np.int64)
    runs = _numbers(table, "sorted_event_hash", np.uint64)
    received = _numbers(table, "received_ms", np.int64)
    keep = _first_copies(event, runs, received, ts, entity)
    keep &= entity != _NO_PERSON
    merges = conn.sql(load_sql("funnel/person_merge_hashes")).to_arrow_table()
    merged, found = _lookup(entity, merges, "origin_hash", "person_hash")
    entity = np.where(found, merged, entity)
    if spec.by == "account":
        accounts = conn.sql(load_sql("funnel/person_account_hashes")).to_arrow_table()
        entity, has_account = _lookup(entity, accounts, "person_hash", "account_hash")
        keep &= has_account
    if entities is not None:
        keep &= isin_sorted(entity, np.unique(entities))
    position = _numbers(table, "name_code", np.int64)
    if keep.all():  # the usual case: no copy, no one without a person; spare the gathers
        return _coded(spec, position, event, entity, ts, None)
    return _coded(spec, position[keep], event[keep], entity[keep], ts[keep], None)


def _with_entity_values(
    conn: duckdb.DuckDBPyConnection, rows: _Rows, params: dict[str, Any]
) -> _Rows:
    """``rows`` with each step-1 entry's breakdown value looked up by its entity (a person's
    or account's property, ``sql/funnel/entity_values.sql``); ``None`` where it has none."""
    values = conn.sql(load_sql("funnel/entity_values"), params=params).to_arrow_table()
    at, found = _find(rows.entity, _numbers(values, "entity_hash", np.uint64))
    if at is None:
        value: pa.Array = pa.nulls(rows.entity.size, pa.string())
    else:
        step1 = found & (rows.code == 1)
        value = values["value"].combine_chunks().take(pa.array(at, mask=~step1))
    return _Rows(rows.event, rows.entity, rows.ts, rows.code, value)


def _first_copies(
    event: npt.NDArray[np.uint64],
    runs: npt.NDArray[np.uint64],
    received: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    person: npt.NDArray[np.uint64],
) -> npt.NDArray[np.bool_]:
    """Which rows to keep so each event hash has one: the earliest received, then earliest
    in time (then the smallest person hash, so copies that tie still give one answer).

    ``runs`` holds the same hashes as ``event`` in mostly sorted runs (the index's
    ``sorted_event_hash``): NumPy's stable sort (timsort) merges runs instead of sorting."""
    ordered = np.sort(runs, kind="stable")
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    keep = np.ones(event.shape, dtype=np.bool_)
    if not repeated.size:  # the usual case: no replayed copy among these events
        return keep
    copies = np.flatnonzero(isin_sorted(event, repeated))
    order = copies[np.lexsort((person[copies], ts[copies], received[copies], event[copies]))]
    first = np.concatenate(([True], event[order][1:] != event[order][:-1]))
    keep[copies] = False
    keep[order[first]] = True
    return keep


def isin_sorted(
    values: npt.NDArray[np.uint64], members: npt.NDArray[np.uint64]
) -> npt.NDArray[np.bool_]:
    """``np.isin`` for sorted unique ``members``, usually few: binary searches instead of
    sorting ``values`` (every entry) as ``np.isin`` does."""
    if not members.size:
        return np.zeros(values.shape, dtype=np.bool_)
    at = np.minimum(np.searchsorted(members, values), members.size - 1)
    found: npt.NDArray[np.bool_] = members[at] == values
    return found


def _lookup(
    values: npt.NDArray[np.uint64], pairs: pa.Table, key: str, target: str
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """``values`` mapped through ``pairs`` (sorted by ``key``, unique keys): the mapped
    values and where a key was found (elsewhere the value is meaningless)."""
    at, found = _find(values, _numbers(pairs, key, np.uint64))
    if at is None:
        return values, found
    return _numbers(pairs, target, np.uint64)[at], found


def _find(
    values: npt.NDArray[np.uint64], keys: npt.NDArray[np.uint64]
) -> tuple[npt.NDArray[np.intp] | None, npt.NDArray[np.bool_]]:
    """Where each of ``values`` sits in sorted unique ``keys`` and whether it is there
    (``None`` positions when ``keys`` is empty)."""
    if not keys.size:
        return None, np.zeros(values.shape, dtype=np.bool_)
    at = np.minimum(np.searchsorted(keys, values), keys.size - 1)
    return at, keys[at] == values


def _numbers(table: pa.Table, name: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
    column = table[name].combine_chunks()
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


def _breakdown(table: pa.Table, spec: FunnelSpec) -> pa.Array | None:
    return table["breakdown_value"].combine_chunks() if spec.breakdown else None


def _named_rows(table: pa.Table, spec: FunnelSpec) -> _Rows:
    """``entries.sql``'s rows with their funnel codes (``_coded``)."""
    return _coded(
        spec,
        _numbers(table, "name_code", np.int64),
        _numbers(table, "event_hash", np.uint64),
        _numbers(table, "entity_hash", np.uint64),
        _numbers(table, "ts", np.int64),
        _breakdown(table, spec),
    )


def _coded(
    spec: FunnelSpec,
    position: npt.NDArray[np.int64],
    event: npt.NDArray[np.uint64],
    entity: npt.NDArray[np.uint64],
    ts: npt.NDArray[np.int64],
    breakdown: pa.Array | None,
) -> _Rows:
    """Turn each row's name position into its funnel codes: step ``k`` → ``k`` (a name used
    by several steps gives one row per step), the ``k``-th exclusion → ``-k``, else 0."""
    n = len(spec.steps)
    codes: list[list[int]] = [[0]]
    for i, name in enumerate([*spec.steps, *(e.event for e in spec.exclusions)]):
        steps = [k + 1 for k, step in enumerate(spec.steps) if step == name]
        codes.append(steps or [n - i - 1])
    first = np.array([c[0] for c in codes], dtype=np.int8)
    rows = _Rows(event, entity, ts, first[position], breakdown)
    if all(len(c) == 1 for c in codes):
        return rows
    counts = np.array([len(c) for c in codes])[position]
    repeat = np.repeat(np.arange(position.size), counts)
    nth = np.arange(repeat.size) - np.repeat(np.cumsum(counts) - counts, counts)
    flat = np.array([code for c in codes for code in c], dtype=np.int8)
    starts = np.cumsum([0] + [len(c) for c in codes[:-1]])
    value = None if rows.breakdown is None else rows.breakdown.take(pa.array(repeat))
    return _Rows(
        rows.event[repeat],
        rows.entity[repeat],
        rows.ts[repeat],
        flat[starts[position[repeat]] + nth],
        value,
    )


def _exact_rows(conn: duckdb.DuckDBPyConnection, params: dict[str, Any], spec: FunnelSpec) -> _Rows:
    table = conn.sql(load_sql("funnel/entries_deduplicated"), params=params).to_arrow_table()
    return _Rows(
        _numbers(table, "event_hash", np.uint64),
        _numbers(table, "entity_hash", np.uint64),
        _numbers(table, "ts", np.int64),
        _numbers(table, "code", np.int8),
        _breakdown(table, spec),
    )


def _deduplicate(
    conn: duckdb.DuckDBPyConnection, rows: _Rows, params: dict[str, Any], spec: FunnelSpec
) -> _Rows:
    """Replace the rows of event_ids seen more than once by their deduplicated rows."""
    # One event matching two steps gives two rows with one hash but different codes; two
    # copies of it give the same (hash, code) twice.
    key = rows.event ^ (rows.code.astype(np.uint64) * _MIX)
    ordered = np.sort(key)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size == 0:
        return rows
    hashes = np.unique(rows.event[np.isin(key, repeated)])
    exact = _exact_rows(conn, params | {"event_hashes": hashes.tolist()}, spec)
    kept = rows.where(~np.isin(rows.event, hashes))
    value = None
    if kept.breakdown is not None and exact.breakdown is not None:
        value = pa.concat_arrays([kept.breakdown, exact.breakdown.cast(kept.breakdown.type)])
    return _Rows(
        np.concatenate([kept.event, exact.event]),
        np.concatenate([kept.entity, exact.entity]),
        np.concatenate([kept.ts, exact.ts]),
        np.concatenate([kept.code, exact.code]),
        value,
    )


def _in_range(rows: _Rows, since: datetime | None, until: datetime | None) -> _Rows:
    if since is None and until is None:
        return rows
    keep = np.ones(rows.ts.shape, dtype=np.bool_)
    if since is not None:
        keep &= rows.ts >= _ceil_ms(since)
    if until is not None:
        keep &= rows.ts < _ceil_ms(until)
    return rows.where(keep)


def _ceil_ms(when: datetime) -> int:
    """Lake times are whole ms: ``ts >= when`` iff ``ts_ms >= _ceil_ms(when)``."""
    return -((_EPOCH - when) // timedelta(milliseconds=1))
