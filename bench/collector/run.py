"""Collector benchmark: one collector process against a bare aiokafka producer.

Each run starts a fresh embedded broker and, on it:

1. the baseline, ``bench.collector.bare`` in its own process, sends the run's batches
   straight to Kafka;
2. one collector process (``python -m pipeline collector``) receives the same batches from
   the load generator in this process at full speed (closed loop);
3. the collector is offered half the rate it reached in 2, on a fixed schedule (open loop),
   and its latency measured from each batch's due time.

Then the report: every run and the medians, and PASS/FAIL against the targets.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import orjson
import uvloop

from bench.collector.events import make_batches
from bench.collector.loadgen import Target, closed_loop, http_senders, open_loop
from bench.collector.profile import hotspots, py_spy
from bench.collector.report import RunResult, render
from bench.collector.stack import WRITE_KEY, bench_settings, collector_process, count_records
from bench.collector.stats import CpuMeter, PhaseResult
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.settings import Settings
from pipeline.timeutil import utc_now

__all__ = ["main"]

_BARE_TOPIC = "bare"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.collector",
        description="Collector events/s and latency against a bare aiokafka producer.",
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--batches", type=int, default=4000, help="timed batches at full load")
    parser.add_argument("--batch-size", type=int, default=20, help="events per batch")
    parser.add_argument("--warmup", type=int, default=100, help="untimed batches first")
    parser.add_argument(
        "--connections", type=int, default=16, help="HTTP connections (and producer senders)"
    )
    parser.add_argument(
        "--half-seconds", type=float, default=10.0, help="length of the half-rate phase"
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument(
        "--log-level", default="info", help="the collector's log level (info logs each request)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the collector at full load in run 1; raw stacks to this file",
    )
    return parser


def _run_bare(
    settings: Settings, bodies_file: Path, args: argparse.Namespace, broker_pid: int
) -> PhaseResult:
    """The baseline in its own process; its one line of JSON is the result."""
    command = [
        sys.executable,
        "-m",
        "bench.collector.bare",
        str(bodies_file),
        f"--bootstrap={settings.kafka_bootstrap}",
        f"--topic={settings.topic(_BARE_TOPIC)}",
        f"--warmup={args.warmup}",
        f"--concurrency={args.connections}",
        f"--broker-pid={broker_pid}",
    ]
    done = subprocess.run(command, capture_output=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"bare producer failed:\n{done.stderr.decode()[-2000:]}")
    return PhaseResult.from_json(orjson.loads(done.stdout))


async def _full_load(
    target: Target, bodies: Sequence[bytes], args: argparse.Namespace, cpu: CpuMeter
) -> tuple[PhaseResult, PhaseResult]:
    """Warm-up, then the timed closed loop; both results (the warm-up's only counts events)."""
    async with http_senders(target, args.connections) as senders:
        warm = await closed_loop(senders, bodies[: args.warmup], args.batch_size, CpuMeter({}))
        full = await closed_loop(senders, bodies[args.warmup :], args.batch_size, cpu)
    return warm, full


async def _half_rate(
    target: Target,
    bodies: Sequence[bytes],
    batches_per_s: float,
    args: argparse.Namespace,
    cpu: CpuMeter,
) -> PhaseResult:
    async with http_senders(target, args.connections) as senders:
        return await open_loop(senders, bodies, batches_per_s, args.batch_size, cpu)


def _bodies(count: int, args: argparse.Namespace, seed: int, now: datetime) -> list[bytes]:
    return list(make_batches(count, size=args.batch_size, seed=seed, now=now))


def _collector_phases(
    settings: Settings,
    broker_pid: int,
    bodies: Sequence[bytes],
    args: argparse.Namespace,
    *,
    seed: int,
    profile: bool,
) -> tuple[PhaseResult, PhaseResult, PhaseResult]:
    """Warm-up, full load and half rate against one collector process."""
    with collector_process(settings) as collector:
        target = Target(settings.collector_host, settings.collector_port, WRITE_KEY)
        pids = {"collector": collector.pid, "broker": broker_pid, "loadgen": os.getpid()}
        profiling = py_spy(collector.pid, args.profile) if profile else contextlib.nullcontext()
        with profiling:
            warm, full = uvloop.run(_full_load(target, bodies, args, CpuMeter(pids)))
        batches_per_s = full.events_per_s / 2 / args.batch_size
        count = math.ceil(batches_per_s * args.half_seconds)
        half_bodies = _bodies(count, args, seed=seed, now=utc_now())
        half = uvloop.run(_half_rate(target, half_bodies, batches_per_s, args, CpuMeter(pids)))
    return warm, full, half


def run_once(index: int, args: argparse.Namespace, workdir: Path, profile: bool) -> RunResult:
    """One run on a fresh broker: baseline, collector at full load, collector at half rate.

    With ``profile``, py-spy samples the collector at full load (writing ``args.profile``).
    """
    with EmbeddedBroker(log_path=workdir / "tansu.log") as broker:
        if broker.pid is None:
            raise RuntimeError("the embedded broker did not start")
        settings = bench_settings(
            broker.bootstrap, workdir / "data", args.partitions, args.log_level
        )
        ensure_topics(settings, broker.bootstrap, names=("raw", "dead_letter", _BARE_TOPIC))
        bodies = _bodies(args.warmup + args.batches, args, seed=2 * index, now=utc_now())
        bodies_file = workdir / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(bodies))
        bare = _run_bare(settings, bodies_file, args, broker.pid)
        warm, full, half = _collector_phases(
            settings, broker.pid, bodies, args, seed=2 * index + 1, profile=profile
        )
        acknowledged = warm.events + full.events + half.events
        delivered = count_records(broker.bootstrap, settings.topic("raw"), acknowledged)
    return RunResult(bare=bare, full=full, half=half, delivered=delivered == acknowledged)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report; exit 0 only when every target is met."""
    args = _parser().parse_args(argv)
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f} before the benchmark")
    runs = []
    for index in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="autocap-bench-") as tmp:
            result = run_once(index, args, Path(tmp), profile=bool(args.profile) and index == 0)
        runs.append(result)
        print(
            f"run {index + 1}/{args.runs}: bare {result.bare.events_per_s:,.0f} ev/s,"
            f" collector {result.full.events_per_s:,.0f} ev/s,"
            f" half-rate p99 {result.half.p99_ms:.1f} ms",
            flush=True,
        )
    passed, report = render(runs)
    print()
    print(report)
    if args.profile:
        print(f"\ncollector at full load in run 1, py-spy ({args.profile}; run 1 ran under it):")
        print(hotspots(args.profile))
    return 0 if passed else 1
