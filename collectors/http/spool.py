"""A bounded, fsynced disk spool for events Kafka could not take.

Segments are append-only files of frames; a frame is one request's records and is durable
(fsynced) before the client hears 200. Frames are framed with a length and a CRC, so a
frame torn by a crash mid-append (whose client never got its 200) is recognised and ignored.
Segments drain oldest first; a segment is deleted once all its frames were acknowledged by
Kafka. A crash mid-drain re-sends part of a segment: at least once, and the warehouse
collapses the copies by event_id.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path

import orjson

from pipeline.errors import AutocapError
from pipeline.processes import fsync_path

__all__ = ["DiskSpool", "Frame", "SpoolFull"]

log = logging.getLogger(__name__)

#: One request's records: (topic, key, value).
Frame = list[tuple[str, bytes | None, bytes]]

_MAGIC = b"ACS1"
_HEADER = struct.Struct(">4sII")  # magic, payload length, crc32(payload)
_SUFFIX = ".spool"


class SpoolFull(AutocapError):
    """The spool reached its size limit; the collector answers 503 so clients retry."""


def _encode(frame: Sequence[tuple[str, bytes | None, bytes]]) -> bytes:
    payload = orjson.dumps(
        [[t, k.decode() if k is not None else None, v.decode()] for t, k, v in frame]
    )
    return _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode_all(data: bytes, name: str) -> list[Frame]:
    frames: list[Frame] = []
    pos = 0
    while pos + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, pos)
        payload = data[pos + _HEADER.size : pos + _HEADER.size + length]
        if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            log.warning("spool %s: torn frame at byte %d ignored (never acknowledged)", name, pos)
            break
        frames.append(
            [
                (t, k.encode() if k is not None else None, v.encode())
                for t, k, v in orjson.loads(payload)
            ]
        )
        pos += _HEADER.size + length
    return frames


class DiskSpool:
    """Append-only segments in ``directory``, at most ``max_bytes`` in all."""

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int = 8 * 1024 * 1024):
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        existing = sorted(directory.glob("*" + _SUFFIX))
        self._segments = [p for p in existing if p.stat().st_size > 0]
        for empty in set(existing) - set(self._segments):
            empty.unlink()
        self._bytes = sum(p.stat().st_size for p in self._segments)
        self._next = int(self._segments[-1].stem) + 1 if self._segments else 1
        self._open: Path | None = None  # the segment appends go to
        self._refused = False  # an append was refused and nothing has drained since
        # Appends run in worker threads; a cancelled request must not let two interleave.
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        """Bytes on disk waiting to be drained."""
        return self._bytes

    def is_empty(self) -> bool:
        """Nothing waits to be drained."""
        return not self._segments

    def has_room(self) -> bool:
        """False once an append was refused for lack of space, until a segment drains."""
        return not self._refused and self._bytes < self.max_bytes

    def append(self, frame: Sequence[tuple[str, bytes | None, bytes]]) -> None:
        """Write one frame durably (fsync) or raise ``SpoolFull``. Blocking: call in a thread.

        A frame is either wholly on disk or not at all: a short write or an I/O error (a
        full disk) cuts the segment back to where it was, so the frames after it are never
        hidden behind a torn one.
        """
        data = _encode(frame)
        with self._lock:
            if self._bytes + len(data) > self.max_bytes:
                self._refused = True
                raise SpoolFull(
                    f"the disk spool is full ({self.max_bytes} bytes); Kafka has "
                    "been unreachable too long"
                )
            new_segment = self._open is None or self._open.stat().st_size >= self.segment_bytes
            if new_segment:
                self._open = self.directory / f"{self._next:012d}{_SUFFIX}"
                self._next += 1
            assert self._open is not None
            try:
                self._write(self._open, data)
            except OSError as exc:
                self._refused = True
                raise SpoolFull(f"the disk spool cannot be written ({exc.strerror})") from exc
            if new_segment:
                self._segments.append(self._open)
                fsync_path(self.directory)
            self._bytes += len(data)

    @staticmethod
    def _write(segment: Path, data: bytes) -> None:
        fd = os.open(segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            before = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, before)
                raise
        finally:
            os.close(fd)

    def oldest(self) -> tuple[Path, list[Frame]] | None:
        """The oldest segment and its frames; appends move on to a new segment."""
        with self._lock:
            if not self._segments:
                return None
            segment = self._segments[0]
            if segment == self._open:
                self._open = None  # seal it: later appends start a new segment
        return segment, _decode_all(segment.read_bytes(), segment.name)

    def remove(self, segment: Path) -> None:
        """Delete a fully drained segment."""
        with self._lock:
            size = segment.stat().st_size
            segment.unlink()
            self._segments.remove(segment)
            self._bytes -= size
            self._refused = False
