"""``python -m bench.warehouse.sink``: the sink's rows/s against a bare Arrow → Parquet write.

Each run starts a fresh embedded broker and preloads stage 1's ``enriched`` topic with
realistic enriched events (``bench/stream/traffic.py`` passed through the real stage-1
``process``). Then, on the same records:

1. the baseline: the records, already decoded into Arrow tables of the sink's batch size,
   written with ``pyarrow.parquet.write_table`` (zstd, as the lake): the bare library doing
   the file-writing part of the sink's work (the issue's baseline);
2. ``python -m pipeline sink`` (what ``autocap up`` runs): the path measured. Kafka fetch of
   ``autocap.enriched`` (JSON values, the topic contract), JSON decode, Arrow, Parquet (temp,
   fsync, rename), dead letters, offsets committed, catalog republished.

``--floors`` also measures the two halves of the sink's work alone, so its ceiling shows:
*fetch only* (an aiokafka consumer with the sink's fetch settings reading the topic, no
decode) and *decode + write only* (the sink's decoder and the Parquet write over the JSON
values already in memory, no Kafka, no fsync). Pipelined, the sink cannot beat the slower
of the two, and on 2 shared cores it pays for both.

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
import pyarrow as pa
import pyarrow.parquet as pq
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.collector.profile import hotspots, py_spy
from bench.collector.stack import bench_settings
from bench.stream.run import _START, _preload
from bench.stream.traffic import stage1_outputs
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.processes import die_with_parent, free_port, stop_process
from pipeline.warehouse.decode import TableDecoder
from pipeline.warehouse.schema import EVENT_SCHEMA
from pipeline.warehouse.sink import FETCH_CONFIG

_TARGET = 0.5


def _enriched(count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """Realistic enriched events keyed by person, as stage 1 sends them."""
    values = stage1_outputs(count, seed=seed, start=_START)["events"]
    return [(orjson.loads(v)["person_id"].encode(), v) for v in values]


def _batches(records: list[tuple[bytes, bytes]], batch: int) -> list[list[bytes | None]]:
    values: list[bytes | None] = [v for _, v in records]
    return [values[i : i + batch] for i in range(0, len(values), batch)]


def _bare(records: list[tuple[bytes, bytes]], batch: int, folder: Path) -> float:
    """Rows/s of pyarrow writing the same batches, already Arrow, to Parquet files."""
    folder.mkdir()
    decoder = TableDecoder("events", EVENT_SCHEMA)
    tables: list[pa.Table] = [decoder.decode(b).table for b in _batches(records, batch)]
    started = time.perf_counter()
    for n, table in enumerate(tables):
        pq.write_table(table, folder / f"{n}.parquet", compression="zstd")
    return len(records) / (time.perf_counter() - started)


def _decode_write(records: list[tuple[bytes, bytes]], batch: int, folder: Path) -> float:
    """Floor: rows/s of the sink's decoder then the Parquet write, per batch, from JSON values
    in memory: the sink's work minus Kafka and durability."""
    folder.mkdir()
    decoder = TableDecoder("events", EVENT_SCHEMA)
    batches = _batches(records, batch)
    started = time.perf_counter()
    for n, values in enumerate(batches):
        pq.write_table(decoder.decode(values).table, folder / f"{n}.parquet", compression="zstd")
    return len(records) / (time.perf_counter() - started)


async def _fetch_only(bootstrap: str, topic: str, expected: int) -> float:
    """Floor: rows/s of an aiokafka consumer with the sink's fetch settings reading the
    topic from the start (first fetch to last record), decoding nothing."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **FETCH_CONFIG
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        seen, after_first, first = 0, 0, 0.0
        deadline = time.monotonic() + 300
        while seen < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fetched {seen} of {expected} records")
            fetched = await consumer.getmany(timeout_ms=500)
            count = sum(len(r) for r in fetched.values())
            if count and not seen:
                first = time.perf_counter()  # as for the sink: the rate starts after it
            else:
                after_first += count
            seen += count
        return after_first / (time.perf_counter() - first)
    finally:
        await consumer.stop()


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
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10_000, help="the sink's batch size")
    parser.add_argument(
        "--floors",
        action="store_true",
        help="also measure fetch only and decode + write only (the sink's ceiling)",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the sink in run 1; raw stacks to this file"
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    bares: list[float] = []
    sinks: list[float] = []
    fetches: list[float] = []
    decodes: list[float] = []
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
                topic = settings.topic("enriched")
                ensure_topics(settings, broker.bootstrap)
                asyncio.run(_preload(broker.bootstrap, topic, records))
                bares.append(_bare(records, args.batch, workdir / "bare"))
                line = f"run {run}: bare Arrow→Parquet {bares[-1]:,.0f} rows/s"
                if args.floors:
                    fetches.append(asyncio.run(_fetch_only(broker.bootstrap, topic, len(records))))
                    decodes.append(_decode_write(records, args.batch, workdir / "decode"))
                    line += (
                        f", fetch only {fetches[-1]:,.0f} ({fetches[-1] / bares[-1]:.2f}),"
                        f" decode + write only {decodes[-1]:,.0f} ({decodes[-1] / bares[-1]:.2f})"
                    )
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
            f"{line}, sink {sinks[-1]:,.0f} rows/s, ratio {sinks[-1] / bares[-1]:.2f}", flush=True
        )
    ratio = statistics.median(s / b for s, b in zip(sinks, bares, strict=True))
    verdict = "PASS" if ratio >= _TARGET else "FAIL"
    print(
        f"median of {args.runs}: bare {statistics.median(bares):,.0f} rows/s,"
        f" sink {statistics.median(sinks):,.0f} rows/s,"
        f" ratio {ratio:.2f} (target ≥ {_TARGET:.2f}): {verdict}"
    )
    if args.floors:
        fetch = statistics.median(f / b for f, b in zip(fetches, bares, strict=True))
        decode = statistics.median(d / b for d, b in zip(decodes, bares, strict=True))
        print(
            f"floors (medians): fetch only {statistics.median(fetches):,.0f} rows/s = {fetch:.2f}"
            f" of bare, decode + write only {statistics.median(decodes):,.0f} rows/s ="
            f" {decode:.2f} of bare; the sink reaches"
            f" {statistics.median(s / f for s, f in zip(sinks, fetches, strict=True)):.2f}"
            " of the fetch floor"
        )
    if args.profile:
        print(f"\nsink in run 1, py-spy ({args.profile}):")
        print(hotspots(args.profile))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
