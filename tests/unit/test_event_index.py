"""The events index: built for every live events file, read by the funnel in place of the
lake, rebuilt by forget, cleaned up with its events file; funnels through it answer exactly
as through the lake (identity merges, accounts, person-less events, partial indexing)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.forget.keys import PersonKeys
from pipeline.forget.purge import purge_until_clean
from pipeline.warehouse.catalog import CatalogPublisher, publish_catalog
from pipeline.warehouse.compact import CompactionPolicy, Compactor
from pipeline.warehouse.event_index import (
    INDEX_SCHEMA,
    INDEX_TABLE,
    build_index,
    index_events,
    index_path,
)
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import IDENTITY_SCHEMA, records_to_table
from tests.unit.funnel_lake import T0, funnel_json, iso


def _events(seed: int, start: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(start, start + n):
        ms = rng.randrange(0, 8_000, 50)
        person = f"p{rng.randrange(40)}" if i % 17 else None  # some events have no person
        rows.append(
            {
                "event_id": f"e{i}",
                # Some calls carry no event name (identify): the index keeps them too.
                "type": "track" if i % 13 else "identify",
                "event": rng.choice(["A", "B", "C", "x"]) if i % 13 else None,
                "anonymous_id": person or f"anon{i}",
                "person_id": person,
                "timestamp": iso(T0 + ms),
                "received_at": iso(T0 + ms + 10),
                "account_id": f"acct{rng.randrange(4)}" if i % 4 == 0 else None,
            }
        )
    return rows


def _links(pairs: list[tuple[str, str]]) -> Any:
    rows = [
        {
            "kind": "link",
            "from_person": origin,
            "to_person": person,
            "event_id": f"link{i}",
            "timestamp": iso(T0),
            "received_at": iso(T0),
        }
        for i, (origin, person) in enumerate(pairs)
    ]
    return records_to_table(rows, IDENTITY_SCHEMA)


def _lake(root: Path, files: int = 4) -> tuple[Lake, Path, list[Path]]:
    lake = Lake(root / "lake")
    warehouse = root / "warehouse.duckdb"
    publish_catalog(warehouse, lake)
    paths = [lake.write("events", records_to_table(_events(f, f * 200, 200))) for f in range(files)]
    # p1 became p2 and p3 became p2 too (a chain through p4): merged people count once.
    lake.write("identities", _links([("p1", "p2"), ("p3", "p4"), ("p4", "p2")]))
    return lake, warehouse, paths


def _query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


SPECS = [
    {"steps": "A,B,C", "window": "2s"},
    {"steps": "A,B,C", "window": "2s", "mode": "strict"},
    {"steps": "A,B,C", "window": "2s", "mode": "unordered"},
    {"steps": "A,B,C", "window": "3s", "exclude": "x:1-2"},
    {"steps": "A,B,C", "window": "2s", "by": "account"},
    {"steps": "A,B", "window": "2s", "trend": "day"},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(map(str, s.values())))
def test_funnels_through_the_index_equal_funnels_through_the_lake(
    tmp_path: Path, spec: dict[str, Any]
) -> None:
    lake, warehouse, paths = _lake(tmp_path)
    publish_catalog(warehouse, lake)
    from_lake = funnel_json(warehouse, spec)
    # The same answer with the lake's columns: a breakdown reads the lake (entries.sql,
    # merges and accounts joined by id), and one value holds everybody.
    whole = funnel_json(warehouse, {**spec, "breakdown": "type"} if "trend" not in spec else spec)
    if "trend" not in spec:
        assert [g["value"] for g in whole["breakdown"]] == ["track"]
        assert whole["breakdown"][0]["steps"] == from_lake["steps"]
    for path in paths[:2]:  # half indexed, half not
        build_index(path, index_path(lake, path))
    publish_catalog(warehouse, lake)
    assert _query(warehouse, "SELECT count(*) FROM lake_events_index") == [(400,)]
    assert funnel_json(warehouse, spec) == from_lake
    assert index_events(lake) == 2  # the rest
    publish_catalog(warehouse, lake)
    assert _query(warehouse, "SELECT count(*) FROM lake_events_unindexed") == [(0,)]
    assert funnel_json(warehouse, spec) == from_lake
    assert from_lake["steps"][1]["count"] > 0, "the data must exercise step 2"


def test_index_rows_mirror_the_events_file(tmp_path: Path) -> None:
    lake, warehouse, paths = _lake(tmp_path, files=1)
    assert index_events(lake) == 1
    assert index_events(lake) == 0, "an indexed file is not indexed again"
    publish_catalog(warehouse, lake)
    mirrored = _query(
        warehouse,
        """
        SELECT count(*) FROM (
            SELECT event, CASE WHEN person_id IS NOT NULL THEN hash(person_id) END,
                epoch_ms(timestamp), epoch_ms(received_at), hash(event_id)
            FROM lake_events_raw
            EXCEPT ALL
            SELECT event, person_hash, ts, received_ms, event_hash FROM lake_events_index
        )
        """,
    )
    assert mirrored == [(0,)]
    index = pq.ParquetFile(index_path(lake, paths[0]))
    rows = index.read().to_pylist()
    names = [r["event"] for r in rows]
    named = [n for n in names if n is not None]
    assert names == named + [None] * (len(names) - len(named)), "no name sorts last"
    assert named == sorted(named), "rows sorted by event name, so names skip row groups"
    assert None in names
    for name in set(names):
        mine = [r for r in rows if r["event"] == name]
        assert [r["sorted_event_hash"] for r in mine] == sorted(r["event_hash"] for r in mine)
        people = [(r["person_hash"], r["ts"]) for r in mine if r["person_hash"] is not None]
        assert people == sorted(people), "then by person and time: the funnel merges runs"


def test_index_files_go_with_their_events_file(tmp_path: Path) -> None:
    lake, warehouse, paths = _lake(tmp_path, files=2)
    index_events(lake)
    stale = lake.table_dir(INDEX_TABLE) / "20200101T000000Z-old.i1-duckdb0_0_1.parquet"
    stale.write_bytes(index_path(lake, paths[0]).read_bytes())  # another DuckDB's hashes
    # An older index format's schema file (without received_ms) is replaced.
    schema_file = lake.table_dir(INDEX_TABLE) / "_schema.parquet"
    pq.write_table(pa.table({"event": pa.array([], pa.string())}), schema_file)
    # A retired file keeps its index (a query may still read both) until it is deleted.
    lake.retire("events", [paths[0]], at=0.0)
    index_events(lake)
    assert index_path(lake, paths[0]).exists()
    assert not stale.exists()
    publish_catalog(warehouse, lake)
    assert _query(warehouse, "SELECT count(*) FROM lake_events_index") == [(200,)]
    assert pq.read_schema(schema_file).names == INDEX_SCHEMA.names
    lake.delete_retired("events", older_than=1.0)
    index_events(lake)
    assert not index_path(lake, paths[0]).exists()
    assert index_path(lake, paths[1]).exists()


def test_compaction_rounds_index_and_publish(tmp_path: Path) -> None:
    lake, warehouse, _ = _lake(tmp_path, files=3)
    publisher = CatalogPublisher(warehouse, lake, min_interval_s=0.0)
    Compactor(lake, publisher, CompactionPolicy(min_files=2, grace_s=0.0)).run_once()
    # Merged into one file, which the same round indexed and published.
    assert _query(warehouse, "SELECT count(*) FROM lake_events_unindexed") == [(0,)]
    assert _query(warehouse, "SELECT count(*) FROM lake_events_index") == [(600,)]


def test_forget_rebuilds_the_index_of_a_rewritten_file(tmp_path: Path) -> None:
    lake, warehouse, _ = _lake(tmp_path, files=2)
    index_events(lake)
    publish_catalog(warehouse, lake)
    before = _query(warehouse, "SELECT count(*) FROM lake_events_index")[0][0]
    keys = PersonKeys("p5", {"person_id": frozenset({"p5"})})
    result = purge_until_clean(lake.root.parent, keys, settle_s=0.0, max_passes=2)
    assert result.rows_removed > 0
    publish_catalog(warehouse, lake)
    after = _query(
        warehouse,
        "SELECT count(*), count(*) FILTER (WHERE person_hash = hash('p5')) FROM lake_events_index",
    )
    assert after == [(before - result.rows_removed, 0)]
