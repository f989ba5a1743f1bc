"""``python -m bench.warehouse.materialize``: an incremental refresh against a full build.

The issue's bar: after 1% new events, a refresh costs well under 10% of a full build. On a
seeded lake (``bench/warehouse/generate.py``), with a ``definitions.yaml`` of defined
events and funnels, each run times a full build (every event tagged, every funnel), then
``--refreshes`` times adds 1% new events as one new lake file and times the incremental
refresh; the report is the medians and the ratio. Wall time decides (exit 0 when the ratio
of medians is under ``--target``); CPU time of the process (all threads) is shown beside
it, as it depends less on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.warehouse.generate import generate_lake
from pipeline.definitions import load_definitions
from pipeline.warehouse.catalog import CatalogPublisher, publish_catalog, published_lake
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.materialize import Materializer

DEFINITIONS = """
events:
  - name: Signed Up Or Activated
    match: {event: [Signed Up, Activated]}
  - name: Clicked Buy
    match: {event: $click, selector: "button#buy"}
  - name: Pricing Page
    match: {event: [$pageview, Viewed Pricing], url: "*/pricing*"}
  - name: Any Submit
    match: {event: $submit}
  - name: Changed Email
    match: {event: $change, selector: "input[name=email]"}
funnels:
  - name: activation
    steps: [Signed Up, Activated, Purchased]
    window: 1d
  - name: activation_week
    steps: [Signed Up, Activated, Purchased]
    window: 7d
"""


def _cpu() -> float:
    """CPU seconds of this process, every thread (DuckDB's too)."""
    times = os.times()
    return times.user + times.system


def _add_new_events(lake: Lake, share: float, batch: int = 1) -> int:
    """A new file with ``share`` of the lake's events again, under new event ids: copies of
    the oldest events, so they arrive late, for people who already have history."""
    first = lake.data_files("events")[0]
    table = pq.read_table(first)
    n = max(
        1, int(sum(pq.ParquetFile(p).metadata.num_rows for p in lake.data_files("events")) * share)
    )
    sample = table.slice((batch - 1) * n, n)
    new_ids = pc.binary_join_element_wise(f"new{batch}-", sample.column("event_id"), "")
    sample = sample.set_column(0, "event_id", pa.array(new_ids, pa.string()))
    lake.write("events", sample)
    return n


def main() -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse.materialize")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.01, help="new events, as a share")
    parser.add_argument("--target", type=float, default=0.10, help="max incremental / full")
    parser.add_argument("--refreshes", type=int, default=3, help="incremental refreshes per run")
    args = parser.parse_args()
    fulls, increments, tag_ratios, cpu_ratios = [], [], [], []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            lake = generate_lake(root / "lake", args.events, args.persons, seed=run)
            warehouse = publish_catalog(root / "warehouse.duckdb", lake)
            (root / "definitions.yaml").write_text(DEFINITIONS)
            materializer = Materializer(
                lake,
                published_lake(lake),
                CatalogPublisher(warehouse, lake, 0.0),
                warehouse,
                lambda root=root: load_definitions(root / "definitions.yaml"),
            )
            t0, c0 = time.perf_counter(), _cpu()
            full = materializer.run_once(full=True)
            fulls.append(time.perf_counter() - t0)
            full_cpu = _cpu() - c0
            for refresh in range(1, args.refreshes + 1):
                added = _add_new_events(lake, args.share, refresh)
                t0, c0 = time.perf_counter(), _cpu()
                incremental = materializer.run_once()
                increments.append(time.perf_counter() - t0)
                cpu_ratios.append((_cpu() - c0) / full_cpu)
                assert incremental.events_tagged == added, (incremental.events_tagged, added)
                recomputed = incremental.funnels_recomputed
                assert None not in recomputed.values(), recomputed  # no funnel rebuilt in full
                tag_ratios.append(incremental.tag_seconds / full.tag_seconds)
                print(
                    f"run {run}.{refresh}: full {fulls[-1]:.2f} s ({full.events_tagged:,} events"
                    f" tagged, {len(full.funnels)} funnels), incremental {increments[-1]:.2f} s"
                    f" ({incremental.events_tagged:,} new events, people recomputed per funnel:"
                    f" {sorted(recomputed.values())}), ratio {increments[-1] / fulls[-1]:.3f}"
                    f" (CPU {cpu_ratios[-1]:.3f}; tagging alone {tag_ratios[-1]:.3f})",
                    flush=True,
                )
    ratio = statistics.median(increments) / statistics.median(fulls)
    verdict = "PASS" if ratio < args.target else "FAIL"
    print(
        f"median: full {statistics.median(fulls):.2f} s, incremental"
        f" {statistics.median(increments):.2f} s, ratio {ratio:.3f}"
        f" (target < {args.target:.2f}): {verdict}; CPU ratio"
        f" {statistics.median(cpu_ratios):.3f}; tagging alone {statistics.median(tag_ratios):.3f}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
