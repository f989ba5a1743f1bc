"""Compaction on real Parquet files and real DuckDB: fewer files, the same answers."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline.warehouse.catalog import CatalogPublisher, publish_catalog
from pipeline.warehouse.compact import CompactionPolicy, Compactor
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.query import run_query
from pipeline.warehouse.schema import EVENT_SCHEMA, SESSION_SCHEMA, records_to_table


def _event(n: int, received: str) -> dict[str, object]:
    return {
        "event_id": f"e{n}",
        "type": "track",
        "event": "Clicked",
        "anonymous_id": f"a{n % 3}",
        "person_id": f"a{n % 3}",
        "timestamp": "2026-11-23T10:00:00.000Z",
        "received_at": received,
        "properties": {"n": n},
        "defined_events": ["Buy"] if n % 2 else [],
    }


def _session(summary_events: int) -> dict[str, object]:
    return {
        "session_id": "s1",
        "anonymous_id": "a1",
        "seq": 1,
        "start": "2026-11-23T10:00:00.000Z",
        "end": f"2026-11-23T10:0{summary_events}:00.000Z",
        "events": summary_events,
    }


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lake_with_small_files(tmp_path: Path) -> tuple[Lake, Path]:
    lake = Lake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    publish_catalog(warehouse, lake)
    for f in range(10):
        # Each file repeats the previous file's last event (a replay), received later.
        rows = [_event(n, f"2026-11-23T10:00:{f:02d}.000Z") for n in range(f * 5, f * 5 + 6)]
        lake.write("events", records_to_table(rows, EVENT_SCHEMA))
        lake.write("sessions", records_to_table([_session(f % 5 + 1)], SESSION_SCHEMA))
    publish_catalog(warehouse, lake)
    return lake, warehouse


def _compactor(
    lake: Lake, warehouse: Path, clock: _Clock | None = None, **policy: float
) -> Compactor:
    publisher = CatalogPublisher(warehouse, lake, min_interval_s=0)
    return Compactor(lake, publisher, CompactionPolicy(**policy), clock=clock or _Clock())  # type: ignore[arg-type]


def _answers(warehouse: Path) -> tuple[object, ...]:
    return (
        run_query(warehouse, "SELECT event_id, received_at FROM events ORDER BY 1").rows,
        run_query(warehouse, "SELECT name, count(*) FROM defined_events GROUP BY 1").rows,
        run_query(warehouse, "SELECT session_id, events FROM sessions").rows,
    )


def _files(lake: Lake, table: str) -> list[Path]:
    return sorted(p for p in lake.table_dir(table).glob("*.parquet") if p.name != "_schema.parquet")


def test_compaction_merges_small_files_and_every_view_answers_the_same(tmp_path: Path) -> None:
    lake, warehouse = _lake_with_small_files(tmp_path)
    before = _answers(warehouse)
    assert len(before[0]) == 51  # type: ignore[arg-type]
    clock = _Clock()
    compactor = _compactor(lake, warehouse, clock, min_files=4, grace_s=60)

    assert compactor.run_once() == {
        "events": 10,
        "sessions": 10,
        "identities": 0,
        "profiles": 0,
        "accounts": 0,
        "cohort_changes": 0,
    }
    # The new catalog names the merged file only; inside the grace period the inputs are
    # still on disk for queries that started on the previous catalog...
    assert len(_files(lake, "events")) == 11
    assert len(lake.live_files("events")) == 2  # the schema file and the merged one
    assert _answers(warehouse) == before
    # ...and are not merged a second time.
    assert compactor.run_once() == {
        "events": 0,
        "sessions": 0,
        "identities": 0,
        "profiles": 0,
        "accounts": 0,
        "cohort_changes": 0,
    }

    clock.now += 61
    assert compactor.delete_expired() == 20
    (merged,) = _files(lake, "events")
    ids = pq.read_table(merged).column("event_id").to_pylist()
    assert len(ids) == len(set(ids)) == 51  # deduplicated in the file itself
    assert pq.read_table(merged).schema == EVENT_SCHEMA
    (sessions,) = _files(lake, "sessions")
    assert pq.read_table(sessions).column("events").to_pylist() == [5]
    assert _answers(warehouse) == before


def test_a_crash_between_merge_and_retire_converges(tmp_path: Path) -> None:
    lake, warehouse = _lake_with_small_files(tmp_path)
    before = _answers(warehouse)
    inputs = _files(lake, "events")
    # The process died after writing the merged file, before retiring its inputs.
    compactor = _compactor(lake, warehouse, min_files=4, grace_s=0)
    lake.write("events", pq.read_table(inputs[0]))
    publish_catalog(warehouse, lake)  # both live: the views still count each event once
    assert _answers(warehouse) == before
    assert compactor.run_once()["events"] == 11  # everything merged again
    compactor.clock.now += 1  # type: ignore[attr-defined]
    compactor.delete_expired()
    assert len(_files(lake, "events")) == 1
    assert _answers(warehouse) == before


def test_too_few_small_files_are_left_alone(tmp_path: Path) -> None:
    lake, warehouse = _lake_with_small_files(tmp_path)
    assert _compactor(lake, warehouse, min_files=11).run_once()["events"] == 0
    big = _compactor(lake, warehouse, min_files=2, small_file_bytes=1)
    assert big.run_once()["events"] == 0  # every file counts as large
    assert len(_files(lake, "events")) == 10


def test_a_reader_holding_the_old_catalog_keeps_working(tmp_path: Path) -> None:
    lake, warehouse = _lake_with_small_files(tmp_path)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        before = con.execute("SELECT count(*) FROM events").fetchone()
        _compactor(lake, warehouse, min_files=4, grace_s=60).run_once()
        # The connection still has the old catalog: the inputs it names are still there.
        assert con.execute("SELECT count(*) FROM events").fetchone() == before
    finally:
        con.close()


def test_retirements_from_two_processes_at_once_are_all_kept(tmp_path: Path) -> None:
    import subprocess
    import sys

    lake = Lake(tmp_path / "lake")
    lake.ensure_table("events", EVENT_SCHEMA)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipeline.warehouse.lake import Lake\n"
        "lake = Lake(Path(sys.argv[1]))\n"
        "for n in range(150):\n"
        "    lake.retire('events', [Path(f'{sys.argv[2]}-{n}.parquet')], 1.0)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(lake.root), who]) for who in "ab"]
    assert [p.wait(60) for p in procs] == [0, 0]
    assert len(lake.retired("events")) == 300  # no read-change-write lost the other's
