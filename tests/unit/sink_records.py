"""Stand-ins for aiokafka's TopicPartition and ConsumerRecord in the sink's unit tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

AT = "2026-11-23T10:00:00.000Z"


class TP(NamedTuple):
    """A topic partition, as aiokafka's (a named tuple)."""

    topic: str
    partition: int


@dataclass
class Rec:
    """The fields of a consumer record the sink reads."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
