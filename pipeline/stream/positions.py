"""Seeking to committed offsets must also rewind partitions that have none.

Faust drops records it fetched for a partition while the partition was paused by a
rebalance (and aiokafka's ``fetched_records`` treats the emptied set of active partitions
as "every partition", so it hands them over and moves the positions past them). Faust
relies on the seek to committed offsets that ends every recovery to move those positions
back. aiokafka's ``seek_to_committed`` skips a partition with no committed offset, though,
so a partition nobody had committed yet kept its advanced position: its records were never
processed, its lag never fell, and nothing noticed (the stage-1 stall seen in the
kill-mid-rebalance test: a new group, a worker killed before its first commit).

``rewind_uncommitted_partitions`` wraps the consumer thread's ``seek_to_committed`` so that
such partitions go back to where the reset policy starts them (the beginning, for
``consumer_auto_offset_reset="earliest"``). Their records are then processed, at least
once, like every record before a commit. Changelog partitions are left alone: table
recovery keeps its own positions for them and commits none.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

__all__ = ["rewind", "rewind_uncommitted_partitions", "uncommitted"]


def uncommitted(
    committed: Mapping[Any, int | None], changelog_topics: Collection[str]
) -> list[Any]:
    """The partitions of ``committed`` (partition → committed offset, as aiokafka's
    ``seek_to_committed`` returns it) that have no committed offset and are not a table's
    changelog. aiokafka seeks only to offsets above 0, so 0 and -1 count as none."""
    return [
        tp
        for tp, offset in committed.items()
        if (offset is None or offset <= 0) and tp.topic not in changelog_topics
    ]


async def rewind(thread: Any, committed: Mapping[Any, int | None]) -> list[Any]:
    """Move the uncommitted stream partitions of ``committed`` to the reset policy's start,
    in the consumer's thread; return them."""
    partitions = uncommitted(committed, thread.app.tables.changelog_topics)
    policy = thread.app.conf.consumer_auto_offset_reset
    if not partitions or policy not in ("earliest", "latest"):
        return []
    consumer = thread._ensure_consumer()
    seek = consumer.seek_to_beginning if policy == "earliest" else consumer.seek_to_end
    await thread.call_thread(seek, *partitions)
    return partitions


def rewind_uncommitted_partitions() -> None:
    """Make every Faust consumer in this process rewind uncommitted partitions whenever it
    seeks to committed offsets (idempotent)."""
    original = AIOKafkaConsumerThread.seek_to_committed
    if getattr(original, "autocap_wrapped", False):
        return

    async def seek_to_committed(self: AIOKafkaConsumerThread) -> Mapping[Any, int]:
        committed = await original(self)
        await rewind(self, committed)
        return committed

    seek_to_committed.autocap_wrapped = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]
