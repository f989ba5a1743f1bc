"""``python -m bench.warehouse``: our ordered funnel vs chdb's windowFunnel, same Parquet.

Generates a seeded lake (``bench/warehouse/generate.py``) in a temp dir, publishes the
catalog, then alternates the two engines ``--runs`` times on the same 3-step, 1-day funnel
and prints each run's times, the medians and the ratio ours / chdb. Exit 0 when the ratio of
medians meets ``--target``. Both must find the same number of people at each step.

``--floors`` also times, in the same alternation, DuckDB merely reading what the funnel
needs: the three columns chdb reads (step filter, person_id, timestamp) and those plus the
event_id hash exact deduplication needs, so the report shows how much of our time is the
scan itself and how much is the funnel.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import chdb
import duckdb

from bench.warehouse.generate import FUNNEL_STEPS, generate_lake, replay_events
from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.event_index import INDEX_TABLE, index_events
from pipeline.warehouse.funnel import run_funnel
from pipeline.warehouse.funnel_spec import FunnelSpec


def _chdb_counts(glob: str, mode: str) -> list[int]:
    conditions = ", ".join(f"event = '{s}'" for s in FUNNEL_STEPS)
    names = ", ".join(f"'{s}'" for s in FUNNEL_STEPS)
    # Strict: any other event breaks a chain, so both engines read every event.
    options = "'strict_increase'" + (", 'strict_order'" if mode == "strict" else "")
    where = "" if mode == "strict" else f"WHERE event IN ({names})"
    sql = f"""
        SELECT level, count() FROM (
            SELECT windowFunnel(86400000, {options})(
                toUInt64(toUnixTimestamp64Milli(timestamp)), {conditions}) AS level
            FROM file('{glob}', Parquet)
            {where}
            GROUP BY person_id)
        GROUP BY level"""
    per_level = dict.fromkeys(range(len(FUNNEL_STEPS) + 1), 0)
    for line in str(chdb.query(sql, "CSV")).split():
        level, count = line.split(",")
        per_level[int(level)] = int(count)
    return [sum(c for lv, c in per_level.items() if lv >= k) for k in range(1, 4)]


# The same filter as sql/funnel/entries.sql (the range test is decoded in the reader).
_STEP_FILTER = (
    " FROM lake_events_raw WHERE event BETWEEN list_min($names) AND list_max($names)"
    " AND list_contains($names, event)"
)
_FLOORS = {
    "scan of chdb's columns": "SELECT hash(person_id), epoch_ms(timestamp), "
    "list_position($names, event)" + _STEP_FILTER,
    "scan + event_id hash": "SELECT hash(event_id), hash(person_id), epoch_ms(timestamp), "
    "list_position($names, event)" + _STEP_FILTER,
}


def _floor_s(warehouse: Path, sql: str) -> float:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        t0 = time.perf_counter()
        con.sql(sql, params={"names": list(FUNNEL_STEPS)}).to_arrow_table()
        return time.perf_counter() - t0
    finally:
        con.close()


def main() -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.5, help="max ratio ours / chdb")
    parser.add_argument("--floors", action="store_true", help="also time the bare scans")
    parser.add_argument("--mode", choices=("ordered", "strict"), default="ordered")
    parser.add_argument(
        "--replayed",
        type=int,
        default=0,
        help="also write copies of this many events (a sink replay, received later)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        lake = generate_lake(root / "lake", args.events, args.persons)
        if args.replayed:
            replay_events(lake, args.replayed)
        print(
            f"generated {args.events:,} events / {args.persons:,} persons "
            f"in {time.perf_counter() - started:.1f} s"
        )
        # The lake as the pipeline keeps it: the compactor's rounds index every events file
        # (the funnel reads the index; chdb reads the events files themselves).
        started = time.perf_counter()
        index_events(lake)
        index_mb = sum(p.stat().st_size for p in lake.data_files(INDEX_TABLE)) / 1e6
        events_mb = sum(p.stat().st_size for p in lake.data_files("events")) / 1e6
        print(
            f"indexed in {time.perf_counter() - started:.1f} s: index {index_mb:.0f} MB "
            f"next to {events_mb:.0f} MB of events files"
        )
        warehouse = publish_catalog(root / "warehouse.duckdb", lake)
        spec = FunnelSpec.from_mapping({"steps": FUNNEL_STEPS, "window": "1d", "mode": args.mode})
        glob = str(lake.table_dir("events").resolve() / "*.parquet")
        ours_s, theirs_s = [], []
        floors_s: dict[str, list[float]] = {name: [] for name in _FLOORS}
        for run in range(1, args.runs + 1):
            con = duckdb.connect(str(warehouse), read_only=True)
            t0 = time.perf_counter()
            ours = [s.count for s in run_funnel(con, spec).steps]
            ours_s.append(time.perf_counter() - t0)
            con.close()
            t0 = time.perf_counter()
            theirs = _chdb_counts(glob, args.mode)
            theirs_s.append(time.perf_counter() - t0)
            if args.floors:
                for name, sql in _FLOORS.items():
                    floors_s[name].append(_floor_s(warehouse, sql))
            if ours != theirs:
                print(f"MISMATCH: ours {ours} chdb {theirs}")
                return 1
            print(
                f"run {run}: autocap {ours_s[-1]:.3f} s, chdb {theirs_s[-1]:.3f} s, "
                f"ratio {ours_s[-1] / theirs_s[-1]:.2f}  counts {ours}"
            )
        ratio = statistics.median(ours_s) / statistics.median(theirs_s)
        for name, times in floors_s.items():
            if times:
                print(
                    f"floor, {name}: median {statistics.median(times):.3f} s, "
                    f"ratio {statistics.median(times) / statistics.median(theirs_s):.2f}"
                )
        print(
            f"median: autocap {statistics.median(ours_s):.3f} s, "
            f"chdb {statistics.median(theirs_s):.3f} s, ratio {ratio:.2f} "
            f"(target <= {args.target})"
        )
        return 0 if ratio <= args.target else 1


if __name__ == "__main__":
    raise SystemExit(main())
