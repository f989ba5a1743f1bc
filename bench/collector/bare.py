"""The baseline: a bare aiokafka producer sending the same events, in a process of its own.

It reads the very bodies the load generator posts, sends each message's JSON as one Kafka
record keyed by ``anonymousId`` (what the collector does, minus HTTP and validation), and
uses the collector's producer settings: ``acks="all"``, no idempotence, ``linger_ms=1``.
Each of N senders sends a batch's 20 records and waits for all their acknowledgements
before taking the next batch, as a collector request does.

``python -m bench.collector.bare BODIES --bootstrap ... --topic ...`` prints one JSON line,
a ``PhaseResult``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
import uvloop
from aiokafka import AIOKafkaProducer

from bench.collector.loadgen import Send, closed_loop
from bench.collector.stats import CpuMeter, PhaseResult

__all__ = ["Records", "load_records", "main", "produce"]

#: One batch as (key, value) Kafka records.
Records = list[tuple[bytes, bytes]]


def load_records(path: Path) -> list[Records]:
    """Batches of records from a file of ``POST /v1/batch`` bodies, one body per line."""
    batches = []
    for line in path.read_bytes().splitlines():
        messages = orjson.loads(line)["batch"]
        batches.append([(m["anonymousId"].encode(), orjson.dumps(m)) for m in messages])
    return batches


def _sender(producer: AIOKafkaProducer, topic: str) -> Send[Records]:
    async def send(records: Records) -> bool:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
        return True

    return send


async def produce(
    bootstrap: str,
    topic: str,
    batches: Sequence[Records],
    *,
    warmup: int,
    concurrency: int,
    cpu: CpuMeter,
) -> PhaseResult:
    """Send ``warmup`` batches untimed, then time the rest."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="autocap-bench-bare",
        acks="all",
        enable_idempotence=False,
        linger_ms=1,
    )
    await producer.start()
    try:
        senders = [_sender(producer, topic)] * concurrency
        events_per_batch = len(batches[0])
        await closed_loop(senders, batches[:warmup], events_per_batch, CpuMeter({}))
        return await closed_loop(senders, batches[warmup:], events_per_batch, cpu)
    finally:
        await producer.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.collector.bare", description=__doc__)
    parser.add_argument("bodies", type=Path, help="file of batch bodies, one per line")
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topic", required=True, help="topic to send to (must exist)")
    parser.add_argument("--warmup", type=int, default=0, help="untimed batches first")
    parser.add_argument("--concurrency", type=int, default=16, help="batches in flight")
    parser.add_argument("--broker-pid", type=int, help="also report the broker's CPU share")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the baseline and print its ``PhaseResult`` as JSON."""
    args = _parser().parse_args(argv)
    batches = load_records(args.bodies)
    pids = {"producer": os.getpid()}
    if args.broker_pid is not None:
        pids["broker"] = args.broker_pid
    result = uvloop.run(
        produce(
            args.bootstrap,
            args.topic,
            batches,
            warmup=args.warmup,
            concurrency=args.concurrency,
            cpu=CpuMeter(pids),
        )
    )
    sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
