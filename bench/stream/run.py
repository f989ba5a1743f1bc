"""Stream benchmark: stage 1 (one ``autocap worker`` process) against a bare pass-through.

Each run starts a fresh embedded broker, preloads the raw topic with the same realistic
records, and then, one after the other on that broker:

1. the baseline, ``bench.stream.bare``: a bare aiokafka consumer group member that sends
   every raw record unchanged to a topic of its own;
2. the Faust floor, ``bench.stream.faust_floor``: a Faust agent that only passes records on
   (what any Faust stage costs before it does any work);
3. stage 1, ``python -m pipeline worker`` (what ``autocap up`` runs): decode, identity,
   sessions, defined events, changelogged tables, and ``enriched`` / ``sessions`` /
   ``identities`` out.

Both rates are measured the same way, from the output records' own timestamps (set by each
process's producer when it sends): records out / (last - first). Start-up and group joins
are outside that span, and neither side is charged for the other's broker work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.collector.profile import hotspots, py_spy
from bench.collector.stack import bench_settings
from bench.collector.stats import cpu_seconds
from bench.stream.traffic import raw_records
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import TOPICS, ensure_topics
from pipeline.processes import die_with_parent, free_port, stop_process
from pipeline.settings import Settings

__all__ = ["main"]

_BARE_TOPIC = "passthrough"
_FLOOR_TOPIC = "faustfloor"
_RESTART_EVENTS = 200
_TARGET = 0.35
_START = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Phase:
    """One side of a run: records out, the span they took, and the process's CPU time."""

    records: int
    seconds: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stream",
        description="Stage 1 events/s for one worker against a bare aiokafka pass-through.",
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--events", type=int, default=60_000, help="raw records per run")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument(
        "--store", choices=("memory", "rocksdb"), default="memory", help="stage 1's table store"
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the worker in run 1; raw stacks to this file"
    )
    return parser


async def _preload(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def _output_span(bootstrap: str, topic: str, expected: int, timeout_s: float) -> Phase:
    """Read ``topic`` from the start until ``expected`` records; their timestamp span."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        seen, first, last = 0, float("inf"), 0.0
        deadline = time.monotonic() + timeout_s
        while seen < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {seen} of {expected} records on {topic} in time")
            fetched = await consumer.getmany(timeout_ms=500, max_records=20_000)
            for records in fetched.values():
                seen += len(records)
                first = min(first, records[0].timestamp)
                last = max(last, records[-1].timestamp)
        return Phase(seen, (last - first) / 1000, 0.0)
    finally:
        await consumer.stop()


@contextlib.contextmanager
def _process(
    command: list[str], settings: Settings, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCAP_")}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command,
            env=env | settings.to_env(),
            cwd=settings.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    try:
        yield proc
    finally:
        stop_process(proc, grace_s=10.0)


def _measure(
    proc: subprocess.Popen[bytes], bootstrap: str, topic: str, count: int, log: Path
) -> Phase:
    try:
        phase = asyncio.run(_output_span(bootstrap, topic, count, timeout_s=300))
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{exc}; process log:\n{tail}") from None
    return Phase(phase.records, phase.seconds, cpu_seconds(proc.pid))


@dataclass(frozen=True)
class Run:
    """The three phases of one run, over the same records."""

    bare: Phase
    floor: Phase
    stage1: Phase
    restart_s: float  # stage 1 restarted on its state: start to the first new output


def _restart(settings: Settings, bootstrap: str, processed: int, index: int, log: Path) -> float:
    """Seconds from starting the worker again to the last of a few new records out."""
    extra = raw_records(_RESTART_EVENTS, seed=1000 + index, start=_START)
    asyncio.run(_preload(bootstrap, settings.topic("raw"), extra))
    started = time.monotonic()
    with _process([sys.executable, "-m", "pipeline", "worker"], settings, log):
        expected = processed + _RESTART_EVENTS
        asyncio.run(_output_span(bootstrap, settings.topic("enriched"), expected, timeout_s=300))
        return time.monotonic() - started


def run_once(index: int, args: argparse.Namespace, workdir: Path) -> Run:
    """One run on a fresh broker: the bare pass-through, the Faust floor, then stage 1."""
    with EmbeddedBroker(log_path=workdir / "tansu.log") as broker:
        settings = bench_settings(broker.bootstrap, workdir / "data", args.partitions, "warning")
        settings = settings.with_overrides(
            worker_stage2=False,  # stage 1 alone: stage 2 would share the worker's CPU
            worker_metrics_port=free_port(),
            session_timer_s=3600.0,  # idle-session sweeps are not what is measured
            consumer_session_timeout_s=6.0,
            worker_store=args.store,
        )
        settings.data_dir.mkdir(parents=True)
        ensure_topics(settings, broker.bootstrap, names=(*TOPICS, _BARE_TOPIC, _FLOOR_TOPIC))
        records = raw_records(args.events, seed=index, start=_START)
        asyncio.run(_preload(broker.bootstrap, settings.topic("raw"), records))

        bare_cmd = [
            sys.executable,
            "-m",
            "bench.stream.bare",
            f"--bootstrap={broker.bootstrap}",
            f"--source={settings.topic('raw')}",
            f"--sink={settings.topic(_BARE_TOPIC)}",
            f"--count={len(records)}",
            f"--group={settings.topic_prefix}-bare",
        ]
        bare_log = workdir / "bare.log"
        with _process(bare_cmd, settings, bare_log) as proc:
            bare = _measure(
                proc, broker.bootstrap, settings.topic(_BARE_TOPIC), len(records), bare_log
            )

        floor_cmd = [
            sys.executable,
            "-m",
            "bench.stream.faust_floor",
            f"--bootstrap={broker.bootstrap}",
            f"--source={settings.topic('raw')}",
            f"--sink={settings.topic(_FLOOR_TOPIC)}",
            f"--group={settings.topic_prefix}-floor",
            f"--partitions={args.partitions}",
        ]
        floor_log = workdir / "floor.log"
        with _process(floor_cmd, settings, floor_log) as proc:
            floor = _measure(
                proc, broker.bootstrap, settings.topic(_FLOOR_TOPIC), len(records), floor_log
            )

        worker_log = workdir / "worker.log"
        with _process([sys.executable, "-m", "pipeline", "worker"], settings, worker_log) as proc:
            profiling = (
                py_spy(proc.pid, args.profile)
                if args.profile and index == 0
                else contextlib.nullcontext()
            )
            with profiling:
                stage1 = _measure(
                    proc, broker.bootstrap, settings.topic("enriched"), len(records), worker_log
                )
        # Recovery: a restarted worker rebuilds its tables from their changelogs before new
        # records come out. Not with RocksDB here: Tansu under-reports a changelog's end
        # offset, and Faust refuses to start when its on-disk offset is past it.
        restart_s = math.nan
        if args.store == "memory":
            restart_s = _restart(settings, broker.bootstrap, len(records), index, worker_log)
    return Run(bare, floor, stage1, restart_s)


def _report(runs: Sequence[Run], events: int) -> tuple[bool, str]:
    lines = [
        "events/s (CPU µs per event)",
        f"{'run':>4} {'bare':>16} {'Faust floor':>16} {'stage 1':>16}"
        f" {'stage1/bare':>12} {'stage1/floor':>13} {'restart s':>10}",
    ]

    def cell(phase: Phase) -> str:
        return f"{phase.per_s:,.0f} ({phase.cpu_s / events * 1e6:.0f})"

    for n, run in enumerate(runs, 1):
        lines.append(
            f"{n:>4} {cell(run.bare):>16} {cell(run.floor):>16} {cell(run.stage1):>16}"
            f" {run.stage1.per_s / run.bare.per_s:>12.2f}"
            f" {run.stage1.per_s / run.floor.per_s:>13.2f} {run.restart_s:>10.1f}"
        )
    ratio = statistics.median(r.stage1.per_s / r.bare.per_s for r in runs)
    floor_ratio = statistics.median(r.floor.per_s / r.bare.per_s for r in runs)
    of_floor = statistics.median(r.stage1.per_s / r.floor.per_s for r in runs)
    passed = ratio >= _TARGET
    lines.append(
        f"median: stage 1 / bare {ratio:.2f} (target ≥ {_TARGET:.2f}):"
        f" {'PASS' if passed else 'FAIL'};"
        f" Faust floor / bare {floor_ratio:.2f}; stage 1 / Faust floor {of_floor:.2f};"
        f" restart to new output {statistics.median(r.restart_s for r in runs):.1f} s"
        " (memory store only)"
    )
    return passed, "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; exit 0 only when the target is met."""
    args = _parser().parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    runs = []
    for index in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="autocap-bench-stream-") as tmp:
            run = run_once(index, args, Path(tmp))
        runs.append(run)
        print(
            f"run {index + 1}/{args.runs}: bare {run.bare.per_s:,.0f} ev/s,"
            f" Faust floor {run.floor.per_s:,.0f} ev/s, stage 1 {run.stage1.per_s:,.0f} ev/s",
            flush=True,
        )
    passed, report = _report(runs, args.events)
    print()
    print(report)
    if args.profile:
        print(f"\nworker in run 1, py-spy ({args.profile}; run 1 ran under it):")
        print(hotspots(args.profile))
    return 0 if passed else 1
