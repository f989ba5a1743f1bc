"""The lake and the analysts' catalog, on real Parquet files and real DuckDB."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.query import run_query
from pipeline.warehouse.schema import EVENT_SCHEMA, records_to_table


def record(event_id: str, received: str = "2026-11-23T10:00:00.000Z", **extra: object) -> dict:
    return {
        "event_id": event_id,
        "type": "track",
        "event": "Clicked",
        "anonymous_id": "a",
        "person_id": "a",
        "timestamp": received,
        "received_at": received,
        "properties": {"plan": "pro", "n": 2},
        **extra,
    }


def test_records_become_typed_arrow() -> None:
    table = records_to_table([record("e1", context={"page": {"path": "/x"}})])
    assert table.schema == EVENT_SCHEMA
    row = table.to_pylist()[0]
    assert row["properties"] == '{"plan":"pro","n":2}'
    assert row["timestamp"].isoformat() == "2026-11-23T10:00:00+00:00"
    assert row["user_id"] is None and row["traits"] is None


def test_empty_lake_gives_an_empty_typed_view(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    result = run_query(tmp_path / "warehouse.duckdb", "SELECT count(*) AS n FROM events")
    assert result.rows == [(0,)]
    cols = run_query(tmp_path / "warehouse.duckdb", "DESCRIBE events")
    types = {row[0]: row[1] for row in cols.rows}
    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert types["properties"] == "JSON"


def test_events_view_collapses_replayed_event_ids(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    lake.write("events", records_to_table([record("e1"), record("e2")]))
    # A replay after a crash writes e2 again (later), plus a new e3.
    lake.write("events", records_to_table([record("e2", "2026-11-23T10:00:05.000Z"), record("e3")]))
    publish_catalog(tmp_path / "warehouse.duckdb", lake)  # the sink republishes after writes
    result = run_query(
        tmp_path / "warehouse.duckdb",
        "SELECT event_id, received_at, properties->>'plan' FROM events ORDER BY 1",
    )
    assert [r[0] for r in result.rows] == ["e1", "e2", "e3"]
    assert result.rows[1][1].isoformat() == "2026-11-23T10:00:00+00:00"  # earliest copy wins
    assert result.rows[0][2] == "pro"


def test_write_is_atomic_and_leaves_no_temporaries(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.ensure_table("events", EVENT_SCHEMA)
    path = lake.write("events", records_to_table([record("e1")]))
    assert pq.read_table(path).num_rows == 1
    folder = lake.table_dir("events")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (folder / f"crashed.parquet.{dead}.tmp").write_bytes(b"PAR1 half")  # its writer is gone
    (folder / "unnamed.parquet.tmp").write_bytes(b"PAR1 half")  # no owner to ask
    # Another writer on this host, mid-write (this test process stands for it): kept.
    live = folder / f"writing.parquet.{os.getpid()}.tmp"
    live.write_bytes(b"PAR1 half")
    assert lake.clean_temporaries("events") == 2
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["_schema.parquet", path.name, live.name]
    )
    # A temporary an hour old is a leftover, whoever wrote it.
    os.utime(live, (time.time() - 7200, time.time() - 7200))
    assert lake.clean_temporaries("events") == 1


def test_lake_path_with_quote_is_safe(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "it's a lake")
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    lake.write("events", records_to_table([record("e1")]))
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    assert run_query(tmp_path / "warehouse.duckdb", "SELECT count(*) FROM events").rows == [(1,)]


def test_republish_while_another_process_holds_the_catalog_open(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    lake = Lake(tmp_path / "lake")
    lake.ensure_table("events", EVENT_SCHEMA)
    lake.write("events", records_to_table([record("e1")]))
    publish_catalog(warehouse, lake)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import duckdb, sys, time\n"
                f"con = duckdb.connect({str(warehouse)!r}, read_only=True)\n"
                "print(con.execute('select count(*) from events').fetchone()[0], flush=True)\n"
                "sys.stdin.readline()\n"
                "print(con.execute('select count(*) from events').fetchone()[0], flush=True)\n"
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stdin is not None
    assert reader.stdout.readline().strip() == "1"
    lake.write("events", records_to_table([record("e2")]))
    publish_catalog(warehouse, lake)  # swap while the other process has the file open
    reader.stdin.write("\n")
    reader.stdin.flush()
    # The open connection keeps its catalog (the files it named); a new one sees e2.
    assert reader.stdout.readline().strip() == "1"
    assert reader.wait(10) == 0
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("select count(*) from events").fetchone() == (2,)
    con.close()


def test_event_schema_arrow_schema_and_warehouse_agree(tmp_path: Path) -> None:
    """schemas/event.schema.json, the Arrow schema and the DuckDB view cannot drift."""
    from collectors.http.contract import event_schema
    from pipeline.warehouse.schema import MESSAGE_FIELD_COLUMNS

    json_fields = set(event_schema()["properties"])
    assert json_fields == set(MESSAGE_FIELD_COLUMNS), "map every schema field to a column"
    arrow_columns = set(EVENT_SCHEMA.names)
    assert {c for c in MESSAGE_FIELD_COLUMNS.values() if c} <= arrow_columns
    publish_catalog(tmp_path / "warehouse.duckdb", Lake(tmp_path / "lake"))
    described = run_query(tmp_path / "warehouse.duckdb", "DESCRIBE events").rows
    assert [row[0] for row in described] == EVENT_SCHEMA.names
    duck_types = {row[0]: row[1] for row in described}
    expected = {
        "string": "VARCHAR",
        "int64": "BIGINT",
        "timestamp[ms, tz=UTC]": "TIMESTAMP WITH TIME ZONE",
        "list<item: string>": "VARCHAR[]",
    }
    json_columns = {"context", "properties", "traits", "elements"}
    for field in EVENT_SCHEMA:
        want = "JSON" if field.name in json_columns else expected[str(field.type)]
        assert duck_types[field.name] == want, field.name


def test_events_follow_the_identity_ledger_and_sessions_keep_the_latest(tmp_path: Path) -> None:
    from pipeline.warehouse.schema import IDENTITY_SCHEMA, SESSION_SCHEMA

    lake = Lake(tmp_path / "lake")
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    at = "2026-11-23T10:00:00.000Z"
    lake.write(
        "events",
        records_to_table(
            [
                record("e1", person_id="a:dev1"),
                record("e2", person_id="u:old"),
                record("e3", person_id="u:new"),
                record("e4", person_id="a:dev2"),
            ]
        ),
    )
    edge = {"timestamp": at, "received_at": at}
    lake.write(
        "identities",
        records_to_table(
            [
                {
                    "kind": "link",
                    "from_person": "a:dev1",
                    "to_person": "u:old",
                    "event_id": "i1",
                    **edge,
                },
                {
                    "kind": "alias",
                    "from_person": "u:old",
                    "to_person": "u:new",
                    "event_id": "i2",
                    **edge,
                },
                {
                    "kind": "switch",
                    "from_person": "u:new",
                    "to_person": "u:x",
                    "event_id": "i3",
                    **edge,
                },
                {
                    "kind": "link",
                    "from_person": "a:dev1",
                    "to_person": "u:old",
                    "event_id": "i1",
                    **edge,
                },
            ],
            IDENTITY_SCHEMA,
        ),
    )
    session = {"session_id": "s1", "anonymous_id": "dev1", "seq": 1, "start": at, "end": at}
    lake.write(
        "sessions",
        records_to_table([{**session, "events": 2}, {**session, "events": 5}], SESSION_SCHEMA),
    )
    warehouse = tmp_path / "warehouse.duckdb"
    publish_catalog(warehouse, lake)
    persons = run_query(warehouse, "SELECT event_id, person_id FROM events ORDER BY 1").rows
    # Anonymous history joins the user, an alias merges, a switch merges nothing.
    assert persons == [("e1", "u:new"), ("e2", "u:new"), ("e3", "u:new"), ("e4", "a:dev2")]
    assert run_query(warehouse, "SELECT count(*) FROM identities").rows == [(3,)]
    assert run_query(warehouse, "SELECT session_id, events FROM sessions").rows == [("s1", 5)]


def test_alias_cycles_terminate(tmp_path: Path) -> None:
    from pipeline.warehouse.schema import IDENTITY_SCHEMA

    lake = Lake(tmp_path / "lake")
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    at = {"timestamp": "2026-11-23T10:00:00.000Z", "received_at": "2026-11-23T10:00:00.000Z"}
    lake.write("events", records_to_table([record("e1", person_id="u:a")]))
    lake.write(
        "identities",
        records_to_table(
            [
                {"kind": "alias", "from_person": "u:a", "to_person": "u:b", "event_id": "i1", **at},
                {"kind": "alias", "from_person": "u:b", "to_person": "u:a", "event_id": "i2", **at},
            ],
            IDENTITY_SCHEMA,
        ),
    )
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    rows = run_query(tmp_path / "warehouse.duckdb", "SELECT person_id FROM events").rows
    assert rows in ([("u:a",)], [("u:b",)])
