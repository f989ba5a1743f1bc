"""The baseline: a bare aiokafka consume → produce pass-through, in a process of its own.

It consumes the raw topic in a consumer group (as a Faust worker does), sends each record
unchanged to the output topic with the worker's producer settings (``acks="all"``, no
idempotence), and commits offsets after the producer has flushed: at-least-once, like
stage 1, minus the decoding, state and rules.

``python -m bench.stream.bare --bootstrap ... --source ... --sink ... --count N`` exits when
it has passed ``N`` records on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

__all__ = ["main", "pass_through"]


async def pass_through(
    bootstrap: str, source: str, sink: str, count: int, group: str, session_timeout_s: float
) -> None:
    """Move ``count`` records from ``source`` to ``sink``, committing after each flush."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(session_timeout_s * 1000),
        heartbeat_interval_ms=max(100, int(session_timeout_s * 200)),
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    await producer.start()
    await consumer.start()
    try:
        moved = 0
        while moved < count:
            fetched = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in fetched.values():
                for record in records:
                    await producer.send(sink, record.value, key=record.key)
                moved += len(records)
            if fetched:
                await producer.flush()
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and pass the records through."""
    parser = argparse.ArgumentParser(prog="python -m bench.stream.bare")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--session-timeout-s", type=float, default=6.0)
    args = parser.parse_args(argv)
    uvloop.run(
        pass_through(
            args.bootstrap, args.source, args.sink, args.count, args.group, args.session_timeout_s
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
