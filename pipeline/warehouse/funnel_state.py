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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt

from pipeline.sqlfiles import load_sql
from pipeline.warehouse.catalog import events_views, funnel_views
from pipeline.warehouse.funnel import StepResult, count_steps, scan_entities
from pipeline.warehouse.funnel_entries import (
    Entries,
    defined_events_match,
    fetch_entries,
    isin_sorted,
)
from pipeline.warehouse.funnel_scan import ScanResult
from pipeline.warehouse.funnel_spec import FunnelSpec
from pipeline.warehouse.lake import Lake

__all__ = ["FunnelState", "Refresh", "changed_merges", "new_file_entities", "person_merges"]

U64 = npt.NDArray[np.uint64]
Key = tuple[object, ...]


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
    def from_entries(cls, spec: FunnelSpec, version: str, entries: Entries) -> FunnelState:
        """The rows of the entities in ``entries`` (all of each entity's entries)."""
        entity, scan, latest = scan_entities(spec, entries.entity, entries.ts, entries.code)
        return cls(spec, version, entity, scan, latest)

    def replaced(self, entities: U64, fresh: FunnelState) -> FunnelState:
        """This state with the rows of ``entities`` replaced by ``fresh`` (an entity that no
        longer has a step 1, e.g. merged into another person, has no row there)."""
        keep = ~isin_sorted(self.entity, np.unique(entities))
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


@dataclass
class Refresh:
    """One materializer run over the funnels: ``conn`` holds the catalog's funnel views
    (``funnel_views``) over the whole lake, ``new`` the lake files new since the last run
    (``None``: build every funnel in full), ``moved`` the entities whose person merges
    changed. ``cache`` holds, from the last run, the deduplicated entries of the whole lake
    per funnel input (for inputs simple enough: per person, by name, not strict, no
    breakdown or range); with it, a refresh reads only the new files, not the lake again.
    ``next_cache`` is what the next run gets."""

    conn: duckdb.DuckDBPyConnection
    lake: Lake
    version: str
    defined: frozenset[str]  # this run's defined event names: the only ones tags can carry
    new: list[Path] | None
    moved: U64 | None
    cache: dict[Key, Entries]
    next_cache: dict[Key, Entries] = field(default_factory=dict)
    _full: dict[Key, Entries] = field(default_factory=dict)
    _changed: dict[Key, tuple[U64, Entries]] = field(default_factory=dict)

    def state(self, spec: FunnelSpec, old: FunnelState | None) -> tuple[FunnelState, int | None]:
        """``spec``'s state after this run, and how many entities were recomputed (``None``:
        all). Funnels with the same inputs (steps, differing windows) share the reading."""
        names = [*spec.steps, *(e.event for e in spec.exclusions)]
        tagged = not self.defined.isdisjoint(names)
        key = (*_inputs(spec), tagged)
        if (
            self.new is None
            or self.moved is None
            or old is None
            or old.spec != spec
            or old.version != self.version
            or spec.by == "account"
        ):
            if key not in self._full:
                self._full[key] = fetch_entries(self.conn, spec, None, tagged)
                if _cacheable(spec, tagged) and not defined_events_match(self.conn, names, False):
                    self.next_cache[key] = self._full[key]
            return FunnelState.from_entries(spec, self.version, self._full[key]), None
        if key not in self._changed:
            self._changed[key] = self._changed_entries(key, spec, names, tagged)
        entities, fresh = self._changed[key]
        if not entities.size:
            return old, 0
        state = old.replaced(entities, FunnelState.from_entries(spec, self.version, fresh))
        return state, int(entities.size)

    def _changed_entries(
        self, key: Key, spec: FunnelSpec, names: list[str], tagged: bool
    ) -> tuple[U64, Entries]:
        """The entities to recompute and all of their entries."""
        assert self.new is not None and self.moved is not None
        cached = self.cache.get(key)
        if not self.new and not self.moved.size:  # nothing changed (most runs when idle)
            if cached is not None:
                self.next_cache[key] = cached
            return self.moved, _concat([])
        if cached is not None:
            new_con = duckdb.connect()  # the same views, the events of the new files only
            try:
                funnel_views(new_con, self.lake)
                events_views(new_con, self.lake, self.new)
                if not defined_events_match(new_con, names, False):
                    added = fetch_entries(new_con, spec, None, False)
                    return self._merged(key, spec, cached, added)
            finally:
                new_con.close()
        # No cache (or a defined event now names a step): read the changed entities' events.
        changed = np.union1d(new_file_entities(self.conn, spec, self.new, tagged), self.moved)
        return changed, fetch_entries(self.conn, spec, changed, tagged)

    def _merged(
        self, key: Key, spec: FunnelSpec, cached: Entries, added: Entries
    ) -> tuple[U64, Entries]:
        """Cached entries plus the new files' ones. A new copy of a cached event (a replay)
        and a moved person send their entities back to the lake for exact rows."""
        assert self.moved is not None
        dup = isin_sorted(added.event, np.sort(cached.event))
        reread = np.unique(
            np.concatenate(
                [
                    self.moved,
                    added.entity[dup],
                    cached.entity[isin_sorted(cached.event, np.unique(added.event[dup]))],
                ]
            )
        )
        parts = [
            _where(cached, ~isin_sorted(cached.entity, reread)),
            _where(added, ~isin_sorted(added.entity, reread)),
        ]
        if reread.size:
            parts.append(fetch_entries(self.conn, spec, reread, False))
        merged = _concat(parts)
        self.next_cache[key] = merged
        changed = np.union1d(added.entity, reread)
        return changed, _where(merged, isin_sorted(merged.entity, changed))


def _cacheable(spec: FunnelSpec, tagged: bool) -> bool:
    """Inputs whose entries the materializer keeps: by name, per person, without what
    the new files alone cannot decide (a range's edge copies, breakdown values)."""
    return (
        spec.by == "person"
        and spec.mode != "strict"  # every event is an entry: too many to keep
        and not tagged
        and not spec.breakdown
        and spec.since is None
        and spec.until is None
    )


def _where(entries: Entries, keep: npt.NDArray[np.bool_]) -> Entries:
    return Entries(
        entries.entity[keep], entries.ts[keep], entries.code[keep], None, entries.event[keep]
    )


def _concat(parts: list[Entries]) -> Entries:
    return Entries(
        np.concatenate([np.zeros(0, dtype=np.uint64), *(p.entity for p in parts)]),
        np.concatenate([np.zeros(0, dtype=np.int64), *(p.ts for p in parts)]),
        np.concatenate([np.zeros(0, dtype=np.int8), *(p.code for p in parts)]),
        None,
        np.concatenate([np.zeros(0, dtype=np.uint64), *(p.event for p in parts)]),
    )


def new_file_entities(
    conn: duckdb.DuckDBPyConnection,
    spec: FunnelSpec,
    files: Sequence[Path],
    tagged: bool,
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
    table = conn.sql(load_sql("materialize/new_file_entities"), params=params).to_arrow_table()
    return np.asarray(table["entity_hash"].to_numpy(), dtype=np.uint64)


def _inputs(spec: FunnelSpec) -> tuple[object, ...]:
    """What ``fetch_entries`` reads for ``spec`` (not the windows)."""
    names = (*spec.steps, *(e.event for e in spec.exclusions))
    return (names, spec.mode == "strict", spec.by, spec.breakdown, spec.since, spec.until)


def person_merges(conn: duckdb.DuckDBPyConnection) -> npt.NDArray[np.void]:
    """The catalog's ``person_merges`` as (origin hash, person hash) pairs, one 16-byte
    value each, so two snapshots compare with set operations."""
    table = conn.sql(load_sql("funnel/person_merge_hashes")).to_arrow_table()
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
