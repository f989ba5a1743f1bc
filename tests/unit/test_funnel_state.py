"""Incremental funnel tables: after each change to a real lake (new events, late events,
replayed copies, identity merges, compaction), the materializer's refresh recomputes only
some people, yet its ``funnel_<name>`` tables equal a full build by the funnel engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.definitions import load_definitions
from pipeline.warehouse.catalog import CatalogPublisher, publish_catalog, published_lake
from pipeline.warehouse.funnel import run_funnel
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.materialize import Materializer
from pipeline.warehouse.schema import EVENT_SCHEMA, IDENTITY_SCHEMA, records_to_table

DEFINITIONS = """
events:
  - name: Bought
    match: {event: C}
funnels:
  - name: ordered
    steps: [A, B, C]
    window: 1h
  - name: strict
    steps: [A, B, C]
    window: 2h
    mode: strict
  - name: unordered
    steps: [A, B, C]
    window: 1h
    mode: unordered
  - name: excluded
    steps: [A, B, Bought]
    window: 3h
    exclude: ["X:1-2"]
"""

START = datetime(2026, 11, 20, tzinfo=UTC)
NOW = START + timedelta(hours=30)  # some attempts are still in flight
PERSONS = 60


class Events:
    """Seeded random events; each call returns new ones (unique event ids)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def make(self, count: int, hours: float, persons: int = PERSONS) -> list[dict[str, object]]:
        rows = []
        for _ in range(count):
            self.n += 1
            at = START + timedelta(seconds=int(self.rng.integers(0, int(hours * 3600))))
            stamp = at.isoformat().replace("+00:00", "Z")
            person = f"u{self.rng.integers(0, persons)}"
            rows.append(
                {
                    "event_id": f"e{self.n}",
                    "type": "track",
                    "event": str(self.rng.choice(["A", "B", "C", "X", "noise"])),
                    "anonymous_id": person,
                    "person_id": person,
                    "timestamp": stamp,
                    "received_at": stamp,
                    "defined_events": [],
                }
            )
        return rows


def _link(n: int, origin: str, person: str) -> pa.Table:
    at = START + timedelta(hours=1, seconds=n)
    row = {
        "kind": "link",
        "from_person": origin,
        "to_person": person,
        "event_id": f"i{n}",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "received_at": at.isoformat().replace("+00:00", "Z"),
    }
    return records_to_table([row], IDENTITY_SCHEMA)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Lake, Path, Materializer]:
    lake = Lake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    publish_catalog(warehouse, lake)
    (tmp_path / "definitions.yaml").write_text(DEFINITIONS)
    materializer = Materializer(
        lake,
        published_lake(lake),
        CatalogPublisher(warehouse, lake, 0.0),
        warehouse,
        lambda: load_definitions(tmp_path / "definitions.yaml"),
        grace_s=0.0,
        clock=lambda: NOW,
    )
    return lake, warehouse, materializer


def _assert_equals_full_build(warehouse: Path, materializer: Materializer) -> None:
    definitions = materializer.definitions()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for funnel in definitions.funnels:
            full = run_funnel(con, funnel.spec, now=NOW)
            got = con.sql(
                f"SELECT step, count, dropped, in_flight, conversion_from_previous,"
                f" median_time_to_convert_s FROM funnel_{funnel.name} ORDER BY step_index"
            ).fetchall()
            want = [
                (
                    s.step,
                    s.count,
                    s.dropped,
                    s.in_flight,
                    s.conversion_from_previous,
                    s.median_time_to_convert_s,
                )
                for s in full.steps
            ]
            assert got == want, funnel.name
            assert full.steps[0].count > 0  # the data exercises the funnel
    finally:
        con.close()


def test_incremental_refreshes_equal_full_builds(world: tuple[Lake, Path, Materializer]) -> None:
    lake, warehouse, materializer = world
    events = Events(seed=3)
    for _ in range(3):
        lake.write("events", records_to_table(events.make(300, hours=28)))
    lake.write("identities", _link(1, "u1", "u2"))
    publish_catalog(warehouse, lake)
    first = materializer.run_once()
    assert set(first.funnels_recomputed.values()) == {None}  # the first run builds all
    _assert_equals_full_build(warehouse, materializer)

    def refresh() -> dict[str, int | None]:
        publish_catalog(warehouse, lake)
        report = materializer.run_once()
        _assert_equals_full_build(warehouse, materializer)
        return report.funnels_recomputed

    # Nothing new: nobody recomputed.
    assert set(refresh().values()) == {0}
    # New events now, for a few people only.
    lake.write("events", records_to_table(events.make(6, hours=30, persons=5)))
    recomputed = refresh()
    assert all(n is not None and 0 < n <= 5 for n in recomputed.values()), recomputed
    # Late events: timestamps early in the period, arriving now.
    lake.write("events", records_to_table(events.make(20, hours=3)))
    recomputed = refresh()
    assert all(n is not None and n < PERSONS for n in recomputed.values()), recomputed
    # Copies of old events: a replay (received later: the old copies count) and a client
    # retry received earlier with another clock skew (this copy counts, 20 minutes later).
    copies = pq.read_table(lake.data_files("events")[0]).slice(0, 60)
    received = copies.schema.get_field_index("received_at")
    replay = copies.slice(0, 30)
    later = pa.array([NOW] * replay.num_rows, EVENT_SCHEMA.field("received_at").type)
    lake.write("events", replay.set_column(received, "received_at", later))
    retry = copies.slice(30)
    shifted = pc.add(retry.column("timestamp"), pa.scalar(timedelta(minutes=20)))
    earlier = pc.subtract(retry.column("received_at"), pa.scalar(timedelta(hours=1)))
    retry = retry.set_column(received, "received_at", earlier)
    retry = retry.set_column(retry.schema.get_field_index("timestamp"), "timestamp", shifted)
    lake.write("events", retry)
    refresh()
    # Identity merges: u3's events now belong to u4, u5's to u1 (and so to u2).
    lake.write("identities", _link(2, "u3", "u4"))
    lake.write("identities", _link(3, "u5", "u1"))
    recomputed = refresh()
    assert all(n is not None and 0 < n < PERSONS for n in recomputed.values()), recomputed
    # A changed funnel is rebuilt in full.
    (warehouse.parent / "definitions.yaml").write_text(
        DEFINITIONS.replace("window: 1h\n  - name: strict", "window: 2h\n  - name: strict")
    )
    assert refresh()["ordered"] is None
