"""Identifiers: UUIDv7 event ids (time-ordered, so lake files and indexes stay local)."""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["uuid7"]


def uuid7(unix_ms: int | None = None, rand: bytes | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, variant 10, 74 random bits."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    tail = os.urandom(10) if rand is None else rand
    if len(tail) != 10 or not 0 <= ms < 1 << 48:
        raise ValueError("uuid7 needs 0 <= unix_ms < 2**48 and 10 random bytes")
    value = (ms << 80) | int.from_bytes(tail, "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
    return str(uuid.UUID(int=value))
