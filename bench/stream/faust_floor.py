"""The Faust floor: the smallest Faust agent that passes records through, in its own process.

Same worker settings as stage 1 (at-least-once, raw serializers, memory tables), but the
agent only sends each record on. It shows how much of stage 1's cost is Faust's own
per-record machinery (consumer thread, conductor, stream, acks) rather than autocap's rules.

``python -m bench.stream.faust_floor --bootstrap ... --source ... --sink ... --group ...``
runs until stopped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import faust

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pass-through agent until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.stream.faust_floor")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args(argv)
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="autocap-faust-floor-"),
        processing_guarantee="at_least_once",
        producer_acks=-1,
        broker_session_timeout=6.0,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        autodiscover=False,
    )
    source = app.topic(
        args.source,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=args.partitions,
    )
    sink = args.sink

    async def pass_through(stream: Any) -> None:
        async for event in stream.events():
            await app.producer.send(sink, event.key, event.value, None, None, None)

    app.agent(source, name="floor")(pass_through)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.spinner = None  # see pipeline.stream.worker: the spinner turns on debug logging
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
