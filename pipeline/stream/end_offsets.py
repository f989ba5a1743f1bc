"""End offsets a table recovery can trust, also on brokers that under-report them.

Faust restores a table by reading its changelog up to the partition's end offset as
``ListOffsets`` reports it. The embedded broker (Tansu) answers with the *last batch's base
offset + 1*, so when the last changelog batch holds several records, recovery stops after
its first one and the table comes back without the others (seen: a profile restored with 5
of its 8 events). A fetch answer's high watermark is right, so ``fetched_end_offsets``
fetches from just before the reported end and takes the larger of the two. On a broker that
reports correctly the two agree; the cost is one fetch per changelog partition per recovery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

__all__ = ["fetched_end_offsets", "trust_fetched_end_offsets"]

_FETCH_TIMEOUT_S = 10.0


async def fetched_end_offsets(
    bootstrap: str, reported: Mapping[Any, int], timeout_s: float = _FETCH_TIMEOUT_S
) -> dict[Any, int]:
    """``reported`` (partition → end offset from ListOffsets) corrected by the high watermark
    of a fetch from one before each reported end. Keys keep their own type (Faust's TP)."""
    out = dict(reported)
    pending = {TopicPartition(tp[0], tp[1]): tp for tp, end in reported.items() if end > 0}
    if not pending:
        return out
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        consumer.assign(list(pending))
        for tp, key in pending.items():
            consumer.seek(tp, reported[key] - 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while pending and loop.time() < deadline:
            await consumer.getmany(*pending, timeout_ms=200, max_records=1)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    key = pending.pop(tp)
                    out[key] = max(out[key], highwater)
    finally:
        await consumer.stop()
    return out


def trust_fetched_end_offsets(bootstrap: str) -> None:
    """Make Faust's table recovery (in this process) use ``fetched_end_offsets``.

    Faust has no hook for this, so its consumer thread's end-offset query is wrapped; the
    transactional branch (last stable offsets) is left as it is.
    """
    original = AIOKafkaConsumerThread._highwaters
    if getattr(original, "autocap_wrapped", False):
        return

    async def _highwaters(self: AIOKafkaConsumerThread, partitions: list[Any]) -> Any:
        reported = await original(self, partitions)
        if self.consumer.in_transaction:
            return reported
        return await fetched_end_offsets(bootstrap, reported)

    _highwaters.autocap_wrapped = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]
