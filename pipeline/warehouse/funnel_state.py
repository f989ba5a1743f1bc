"""Per-entity funnel state, so the materializer refreshes a funnel table by recomputing only
the people whose events changed.

A funnel's counts are sums over entities (people or accounts) of what each one reached:
its best level, when it first reached each step and from which step-1 event, and its latest
attempt start (which decides *in flight* against the refresh time). ``FunnelState`` keeps
those per entity; a refresh recomputes, from all of their events in the catalog, only the
entities that

- have an event in a lake file that is new since the last refresh (new events, late
  events, replayed copies, a compaction's merged files: all arrive as new files), or
- had their person changed by an identity merge (the old and the new person both).

Every other entity's events are unchanged, so its row is too; the counts then come from
the merged rows exactly as a full build computes them (``tests/unit/test_funnel_state.py``
checks equality against full builds). Per-account funnels are rebuilt in full: a person
joining an account moves events between accounts without a new event file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from pipeline.sqlfiles import load_sql
from pipeline.warehouse.funnel import StepResult, count_steps, scan_entities
from pipeline.warehouse.funnel_entries import fetch_entries
from pipeline.warehouse.funnel_scan import ScanResult
from pipeline.warehouse.funnel_spec import FunnelSpec

__all__ = ["FunnelState", "changed_merges", "new_file_entities", "person_merges"]

U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class FunnelState:
    """One row per entity that has a step 1 (``entity`` holds their hashes), for ``spec``
    under the definitions version ``version``; times in absolute ms."""

    spec: FunnelSpec
    version: str
    entity: U64
    scan: ScanResult
    latest_start: npt.NDArray[np.int64]

    @classmethod
    def build(
        cls,
        conn: duckdb.DuckDBPyConnection,
        spec: FunnelSpec,
        version: str,
        entities: U64 | None = None,
        tagged: bool | None = None,
        shared: dict[object, Any] | None = None,
    ) -> FunnelState:
        """Compute the rows of every entity (or only of ``entities``) from the catalog;
        ``tagged`` as for ``fetch_entries``. Funnels that differ only in their windows read
        the same entries: pass one ``shared`` dict to all of them in one refresh."""
        key = (_inputs(spec), None if entities is None else entities.tobytes(), tagged)
        shared = {} if shared is None else shared
        if key not in shared:
            shared[key] = fetch_entries(conn, spec, entities, tagged)
        entries = shared[key]
        entity, scan, latest = scan_entities(spec, entries.entity, entries.ts, entries.code)
        return cls(spec, version, entity, scan, latest)

    def refreshed(
        self,
        conn: duckdb.DuckDBPyConnection,
        entities: U64,
        tagged: bool | None = None,
        shared: dict[object, Any] | None = None,
    ) -> FunnelState:
        """This state with the rows of ``entities`` recomputed (an entity that no longer
        has a step 1, e.g. merged into another person, loses its row)."""
        if not entities.size:
            return self
        fresh = FunnelState.build(conn, self.spec, self.version, entities, tagged, shared)
        keep = ~np.isin(self.entity, entities)
        return FunnelState(
            self.spec,
            self.version,
            np.concatenate([self.entity[keep], fresh.entity]),
            ScanResult(
                np.concatenate([self.scan.level[keep], fresh.scan.level]),
                np.concatenate([self.scan.reached_at[:, keep], fresh.scan.reached_at], axis=1),
                np.concatenate([self.scan.started_at[:, keep], fresh.scan.started_at], axis=1),
            ),
            np.concatenate([self.latest_start[keep], fresh.latest_start]),
        )

    def steps(self, as_of: datetime) -> list[StepResult]:
        """The funnel's step rows as of ``as_of`` (who is still in flight depends on it)."""
        return count_steps(self.spec, self.scan, self.latest_start, as_of)


def new_file_entities(
    conn: duckdb.DuckDBPyConnection,
    spec: FunnelSpec,
    files: Sequence[Path],
    tagged: bool,
    shared: dict[object, Any] | None = None,
) -> U64:
    """Hashes of the (merged) persons with an event in ``files`` that can matter to
    ``spec``: a step or exclusion by name or by stage 1's defined events; any event in
    strict mode or when the materializer's tags may name a step (``tagged``; tags are not
    in the files)."""
    if not files:
        return np.zeros(0, dtype=np.uint64)
    names = [*spec.steps, *(e.event for e in spec.exclusions)]
    paths = [str(f) for f in files]
    everything = spec.mode == "strict" or tagged
    params = {"files": paths, "names": names, "all": everything}
    key = ("new", tuple(paths), tuple(names), everything)
    shared = {} if shared is None else shared
    if key not in shared:
        sql = load_sql("materialize/new_file_entities")
        table = conn.sql(sql, params=params).to_arrow_table()
        shared[key] = np.asarray(table["entity_hash"].to_numpy(), dtype=np.uint64)
    hashes: U64 = shared[key]
    return hashes


def _inputs(spec: FunnelSpec) -> tuple[object, ...]:
    """What ``fetch_entries`` reads for ``spec`` (not the windows)."""
    names = (*spec.steps, *(e.event for e in spec.exclusions))
    return (names, spec.mode == "strict", spec.by, spec.breakdown, spec.since, spec.until)


def person_merges(conn: duckdb.DuckDBPyConnection) -> npt.NDArray[np.void]:
    """The catalog's ``person_merges`` as (origin hash, person hash) pairs, one 16-byte
    value each, so two snapshots compare with set operations."""
    table = conn.sql(load_sql("materialize/person_merge_hashes")).to_arrow_table()
    pairs = np.empty((table.num_rows, 2), dtype=np.uint64)
    pairs[:, 0] = table["origin_hash"].to_numpy()
    pairs[:, 1] = table["person_hash"].to_numpy()
    return pairs.view(np.dtype((np.void, 16))).ravel()


def changed_merges(before: npt.NDArray[np.void], after: npt.NDArray[np.void]) -> U64:
    """Entities whose events moved between two ``person_merges`` snapshots: for each
    added, removed or redirected merge, its origin and the person it pointed to."""
    changed = np.setxor1d(before, after)
    hashes = changed.view(np.uint64).reshape(-1, 2)
    return np.unique(hashes.ravel())
