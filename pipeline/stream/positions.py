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

__all__ = ["HoleWatch", "holes", "rewind", "rewind_uncommitted_partitions", "uncommitted"]


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


def holes(
    committed: Mapping[Any, int | None], acked: Mapping[Any, Collection[int]]
) -> dict[Any, int]:
    """Partitions with a hole: records past the committed offset were processed (acked)
    while the ones right after it were not, so nothing can be committed any more (Faust
    commits only a run of acked offsets that starts at the committed one). Each agent
    handles its partition in order, so a hole means records were dropped after fetching.
    Returns partition → committed offset. A partition never committed is left to
    ``rewind`` (it has no offset to go back to)."""
    found = {}
    for tp, offsets in acked.items():
        start = committed.get(tp)
        # Faust itself tolerates a first acked offset one past the committed one.
        if offsets and start and min(offsets) - start > 1:
            found[tp] = start
    return found


class HoleWatch:
    """Holes that stay put: the same committed offset behind a hole at ``patience``
    consecutive checks (a hole seen once may be a commit racing the check)."""

    def __init__(self, patience: int = 2) -> None:
        self.patience = patience
        self._seen: dict[Any, tuple[int, int]] = {}  # partition → (committed, checks)

    def due(self, found: Mapping[Any, int]) -> list[Any]:
        """The partitions to send back to their committed offset now."""
        seen = {}
        for tp, start in found.items():
            before, checks = self._seen.get(tp, (start, 0))
            seen[tp] = (start, checks + 1 if before == start else 1)
        self._seen = seen
        ready = [tp for tp, (_, checks) in seen.items() if checks >= self.patience]
        for tp in ready:
            del self._seen[tp]
        return ready

    def reset(self) -> None:
        """Forget what was seen (a rebalance moves partitions and seeks them anyway)."""
        self._seen.clear()
