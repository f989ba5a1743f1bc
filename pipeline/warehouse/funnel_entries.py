"""Funnel inputs: (entity, time, code) arrays from the lake, deduplicated by event_id.

The fast path (``sql/funnel/entries.sql``) reads every copy of the events named by a step or
an exclusion, with a 64-bit hash of each event_id. Duplicates are rare (crash replays), so
only the event_ids seen more than once are then read again, deduplicated exactly (earliest
``received_at`` per event_id, as the ``events`` view does) by
``sql/funnel/entries_deduplicated.sql``, and their rows replace the copies. A hash collision
only sends a distinct event down that exact path too, so the result equals deduplicating
first. Funnels whose steps are defined events take the exact path for every event (copies
may disagree on defined events). The time range is applied last, on the kept copies.

Entities are told apart by a 64-bit hash of their id: two of ``n`` ids collide with
probability about ``n² / 2⁶⁵`` (3e-8 for a million people).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pipeline.errors import FunnelError
from pipeline.sqlfiles import load_sql
from pipeline.warehouse.funnel_spec import FunnelSpec

__all__ = ["Entries", "fetch_entries"]

_MIX = np.uint64(0x9E3779B97F4A7C15)  # spreads the code over the hash's bits
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Entries:
    """One entry per (event, funnel code): dense entity codes, ms times, codes, and the
    breakdown value of step-1 entries (``None`` without a breakdown)."""

    entity: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    code: npt.NDArray[np.int8]
    breakdown: pa.Array | None


def fetch_entries(conn: duckdb.DuckDBPyConnection, spec: FunnelSpec) -> Entries:
    """Read ``spec``'s entries from the catalog behind ``conn``."""
    source, path = spec.breakdown_source
    params: dict[str, object] = {
        "steps": list(spec.steps),
        "names": [*spec.steps, *(e.event for e in spec.exclusions)],
        "simple_steps": len(set(spec.steps)) == len(spec.steps),
        "strict": spec.mode == "strict",
        "by": spec.by,
        "breakdown_source": source,
        "breakdown_path": path,
    }
    try:
        if _defined_events_match(conn, params["names"]):
            rows = _query(conn, "funnel/entries_deduplicated", params | {"event_hashes": None})
        else:
            rows = _deduplicate(conn, _query(conn, "funnel/entries", params), params)
    except duckdb.CatalogException as exc:
        raise FunnelError(
            f"the warehouse has no funnel inputs ({str(exc).splitlines()[0]}): republish it "
            "with this autocap version (`autocap up` or `autocap sink` does)"
        ) from None
    rows = _in_range(rows, spec.since, spec.until)
    _, entity = np.unique(_column(rows, "entity_hash", np.uint64), return_inverse=True)
    return Entries(
        entity=entity.astype(np.int64),
        ts=_column(rows, "ts", np.int64),
        code=_column(rows, "code", np.int8),
        breakdown=rows["breakdown_value"].combine_chunks() if spec.breakdown else None,
    )


def _query(conn: duckdb.DuckDBPyConnection, name: str, params: dict[str, object]) -> pa.Table:
    return conn.sql(load_sql(name), params=params).to_arrow_table()


def _defined_events_match(conn: duckdb.DuckDBPyConnection, names: object) -> bool:
    for check in ("funnel/defined_possible", "funnel/defined_matches"):
        if not conn.execute(load_sql(check), {"names": names}).fetchall()[0][0]:
            return False
    return True


def _column(rows: pa.Table, name: str, dtype: type[np.generic]) -> npt.NDArray:  # type: ignore[type-arg]
    return np.asarray(rows[name].combine_chunks().to_numpy(zero_copy_only=False), dtype=dtype)


def _deduplicate(
    conn: duckdb.DuckDBPyConnection, rows: pa.Table, params: dict[str, object]
) -> pa.Table:
    """Replace the rows of event_ids seen more than once by their deduplicated rows."""
    event = _column(rows, "event_hash", np.uint64)
    # One event matching two steps gives two rows with one hash but different codes; two
    # copies of it give the same (hash, code) twice.
    key = event ^ (_column(rows, "code", np.int8).astype(np.uint64) * _MIX)
    ordered = np.sort(key)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size == 0:
        return rows
    hashes = np.unique(event[np.isin(key, repeated)])
    exact = _query(
        conn, "funnel/entries_deduplicated", params | {"event_hashes": hashes.tolist()}
    )
    keep = ~np.isin(event, hashes)
    return pa.concat_tables([rows.filter(pa.array(keep)), exact.cast(rows.schema)])


def _in_range(rows: pa.Table, since: datetime | None, until: datetime | None) -> pa.Table:
    if since is None and until is None:
        return rows
    ts = _column(rows, "ts", np.int64)
    keep = np.ones(ts.shape, dtype=np.bool_)
    if since is not None:
        keep &= ts >= _ceil_ms(since)
    if until is not None:
        keep &= ts < _ceil_ms(until)
    return rows.filter(pa.array(keep))


def _ceil_ms(when: datetime) -> int:
    """Lake times are whole ms: ``ts >= when`` iff ``ts_ms >= _ceil_ms(when)``."""
    return -((_EPOCH - when) // timedelta(milliseconds=1))
