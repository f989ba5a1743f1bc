"""``python -m bench.warehouse.sink``: the sink's rows/s against a bare Arrow → Parquet write.

Each run starts a fresh embedded broker and preloads stage 1's ``enriched`` topic with
realistic enriched events (``bench/stream/traffic.py`` passed through the real stage-1
``process``). Then, side by side on the same records:

1. the baselines: the records, already decoded into Arrow tables of the sink's batch size,
   written with ``pyarrow.parquet.write_table`` (zstd, as the lake) — the bare library
   doing the file-writing part of the sink's work (the issue's baseline); and the same from
   the JSON values, the sink's work minus Kafka and durability, twice: record by record
   (orjson, Arrow, Parquet) and with the sink's own batch decoder (DuckDB's JSON reader,
   the fastest JSON → Arrow path here). The second is the *floor* of any sink fed JSON:
   decoding alone caps it far below the first baseline;
2. ``python -m pipeline sink`` (what ``autocap up`` runs) — the path measured: Kafka fetch
   of ``autocap.enriched`` (JSON values), JSON decode, Arrow, Parquet (temp, fsync,
   rename), offsets committed, catalog republished.

The sink's rate is taken between its first and last file (start-up and the group join are
outside it): rows after the first file / (last file's time - first file's time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from bench.collector.profile import hotspots, py_spy
from bench.collector.stack import bench_settings
from bench.stream.run import _START, _preload
from bench.stream.traffic import stage1_outputs
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.processes import die_with_parent, free_port, stop_process
from pipeline.warehouse.jsonl import json_lines_to_table
from pipeline.warehouse.schema import EVENT_SCHEMA, records_to_table

_TARGET = 0.5


def _enriched(count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """Realistic enriched events keyed by person, as stage 1 sends them."""
    values = stage1_outputs(count, seed=seed, start=_START)["events"]
    return [(orjson.loads(v)["person_id"].encode(), v) for v in values]


def _bare_json(records: list[tuple[bytes, bytes]], batch: int, folder: Path) -> float:
    """Rows/s of the sink's own batch decoder (DuckDB's JSON reader, ``json_lines_to_table``)
    then pyarrow's Parquet write, per batch: the sink's work minus Kafka and durability."""
    folder.mkdir()
    values = [v for _, v in records]
    started = time.perf_counter()
    for n, i in enumerate(range(0, len(values), batch)):
        table = json_lines_to_table(values[i : i + batch], EVENT_SCHEMA, folder)
        pq.write_table(table, folder / f"{n}.parquet", compression="zstd")
    return len(values) / (time.perf_counter() - started)


def _bare(records: list[tuple[bytes, bytes]], batch: int, folder: Path) -> tuple[float, float]:
    """Rows/s of (1) pyarrow writing the same batches, already Arrow, to Parquet files, and
    (2) the same from the JSON values: decode, build Arrow, write (the sink minus Kafka)."""
    folder.mkdir()
    started = time.perf_counter()
    tables = [
        records_to_table([orjson.loads(v) for _, v in records[i : i + batch]], EVENT_SCHEMA)
        for i in range(0, len(records), batch)
    ]
    decoded = time.perf_counter() - started
    started = time.perf_counter()
    for n, table in enumerate(tables):
        pq.write_table(table, folder / f"{n}.parquet", compression="zstd")
    written = time.perf_counter() - started
    return len(records) / written, len(records) / (decoded + written)


def _sink_rate(
    settings_env: dict[str, str], lake: Path, expected: int, log: Path, profile: Path | None
) -> float:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "sink"],
            env=settings_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    profiling = py_spy(proc.pid, profile) if profile else contextlib.nullcontext()
    try:
        with profiling:
            files = _wait_for_rows(proc, lake, expected)
    finally:
        stop_process(proc, grace_s=10.0)
    (first, first_rows), (last, _) = files[0], files[-1]
    return (expected - first_rows) / (last - first)


def _wait_for_rows(
    proc: subprocess.Popen[bytes], lake: Path, expected: int
) -> list[tuple[float, int]]:
    """(mtime, rows) of the lake's files, oldest first, once they hold ``expected`` rows."""
    deadline = time.monotonic() + 300
    while True:
        files = sorted(
            (p.stat().st_mtime, pq.ParquetFile(p).metadata.num_rows)
            for p in lake.glob("*.parquet")
            if p.name != "_schema.parquet"
        )
        if sum(rows for _, rows in files) >= expected:
            return files
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"sink wrote {sum(r for _, r in files)} of {expected} rows")
        time.sleep(0.2)


def main() -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse.sink")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10_000, help="the sink's batch size")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the sink in run 1; raw stacks to this file"
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    bares, decodes, duck_decodes, sinks = [], [], [], []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            records = _enriched(args.events, seed=run)
            with EmbeddedBroker(log_path=workdir / "tansu.log") as broker:
                settings = bench_settings(broker.bootstrap, workdir / "data", 4, "warning")
                settings = settings.with_overrides(
                    sink_metrics_port=free_port(),
                    sink_batch_max_records=args.batch,
                    compact_interval_s=0.0,  # merging files is not what is measured
                )
                ensure_topics(settings, broker.bootstrap)
                asyncio.run(_preload(broker.bootstrap, settings.topic("enriched"), records))
                bare, decode = _bare(records, args.batch, workdir / "bare")
                bares.append(bare)
                decodes.append(decode)
                duck_decodes.append(_bare_json(records, args.batch, workdir / "bare_duckdb"))
                env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCAP_")}
                sinks.append(
                    _sink_rate(
                        env | settings.to_env(),
                        settings.lake_dir / "events",
                        len(records),
                        workdir / "sink.log",
                        args.profile if run == 1 else None,
                    )
                )
        print(
            f"run {run}: bare Arrow→Parquet {bares[-1]:,.0f} rows/s, bare JSON→Arrow→Parquet"
            f" {decodes[-1]:,.0f} rows/s (orjson) / {duck_decodes[-1]:,.0f} rows/s (DuckDB),"
            f" sink {sinks[-1]:,.0f} rows/s, ratios {sinks[-1] / bares[-1]:.2f},"
            f" {sinks[-1] / decodes[-1]:.2f} and {sinks[-1] / duck_decodes[-1]:.2f}",
            flush=True,
        )
    ratio = statistics.median(s / b for s, b in zip(sinks, bares, strict=True))
    verdict = "PASS" if ratio >= _TARGET else "FAIL"
    floor = statistics.median(d / b for d, b in zip(duck_decodes, bares, strict=True))
    of_floor = statistics.median(s / d for s, d in zip(sinks, duck_decodes, strict=True))
    of_orjson = statistics.median(s / d for s, d in zip(sinks, decodes, strict=True))
    print(
        f"median: bare {statistics.median(bares):,.0f} rows/s, sink {statistics.median(sinks):,.0f}"
        f" rows/s, ratio {ratio:.2f} (target ≥ {_TARGET:.2f}): {verdict}; the JSON floor"
        f" (DuckDB decode + Parquet, {statistics.median(duck_decodes):,.0f} rows/s) is"
        f" {floor:.2f} of the bare write, and the sink reaches {of_floor:.2f} of that floor and"
        f" {of_orjson:.2f} of orjson record by record ({statistics.median(decodes):,.0f} rows/s)"
    )
    if args.profile:
        print(f"\nsink in run 1, py-spy ({args.profile}):")
        print(hotspots(args.profile))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
