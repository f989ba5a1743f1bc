"""Which partitions a seek to committed offsets rewinds, and how (pipeline.stream.positions).
The same against aiokafka and the real broker: tests/integration/test_stream_positions.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from pipeline.stream.positions import HoleWatch, holes, rewind, uncommitted

RAW0, RAW1, RAW2 = (TopicPartition("p-raw", n) for n in range(3))
CHANGELOG = TopicPartition("p-stream-devices-changelog", 0)


def test_partitions_without_a_committed_offset_are_rewound_but_not_changelogs() -> None:
    committed = {RAW0: None, RAW1: 0, RAW2: 57, CHANGELOG: None, TopicPartition("p-raw", 3): -1}
    assert uncommitted(committed, {CHANGELOG.topic}) == [RAW0, RAW1, TopicPartition("p-raw", 3)]
    assert uncommitted({RAW2: 1}, set()) == []


class _Thread:
    """The parts of Faust's consumer thread that ``rewind`` uses, recording the seeks."""

    def __init__(self, policy: str) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.app = SimpleNamespace(
            conf=SimpleNamespace(consumer_auto_offset_reset=policy),
            tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}),
        )
        consumer = SimpleNamespace(
            seek_to_beginning=self._seek("beginning"), seek_to_end=self._seek("end")
        )
        self._ensure_consumer = lambda: consumer

    def _seek(self, where: str) -> Any:
        async def seek(*partitions: Any) -> None:
            self.calls.append((where, partitions))

        return seek

    async def call_thread(self, fn: Any, *args: Any) -> Any:
        return await fn(*args)


@pytest.mark.parametrize(("policy", "where"), [("earliest", "beginning"), ("latest", "end")])
def test_rewind_follows_the_reset_policy(policy: str, where: str) -> None:
    thread = _Thread(policy)
    rewound = asyncio.run(rewind(thread, {RAW0: None, RAW2: 9, CHANGELOG: None}))
    assert rewound == [RAW0]
    assert thread.calls == [(where, (RAW0,))]


def test_nothing_to_rewind_or_no_policy_seeks_nothing() -> None:
    for policy, committed in (("earliest", {RAW2: 9, CHANGELOG: None}), ("none", {RAW0: None})):
        thread = _Thread(policy)
        assert asyncio.run(rewind(thread, committed)) == []
        assert thread.calls == []


def test_a_hole_is_acked_offsets_past_records_never_acked() -> None:
    committed = {RAW0: 371, RAW1: 500, RAW2: None, CHANGELOG: 9}
    acked = {RAW0: [460, 455], RAW1: [501, 502], RAW2: [40], CHANGELOG: []}
    # RAW1: the next records in order; RAW2: never committed (rewind's case, not a hole).
    assert holes(committed, acked) == {RAW0: 371}
    assert holes({RAW0: 371}, {RAW0: [372]}) == {}  # Faust tolerates one: so do we


def test_only_a_hole_that_stays_put_is_rewound_and_only_once() -> None:
    watch = HoleWatch(patience=2)
    assert watch.due({RAW0: 371, RAW1: 5}) == []
    assert watch.due({RAW0: 371, RAW1: 9}) == [RAW0]  # RAW1 committed meanwhile: it moves
    assert watch.due({RAW0: 371}) == []  # rewound: counting starts again
    assert watch.due({}) == [] and watch.due({RAW0: 371}) == []  # gone, then back: anew
    watch.reset()
    assert watch.due({RAW0: 371}) == []
