"""The persisted forget list: ids whose new events the collector drops (and counts).

One JSON file under the data dir, replaced atomically; ``autocap forget`` adds to it, every
collector re-reads it when it changes (checked at most once a second, so a request costs a
``stat`` per second, not per event).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from pipeline.processes import fsync_path

__all__ = ["ForgetList", "forget_list_path"]

_CHECK_EVERY_S = 1.0


def forget_list_path(data_dir: Path) -> Path:
    """The persisted forget list every collector on this data dir reloads."""
    return data_dir / "forget" / "forgotten.json"


class ForgetList:
    """The ids in ``path``; ``holds`` answers from memory, refreshed when the file changes."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self._ids: frozenset[str] = frozenset()
        self._stamp: tuple[int, int] | None = None
        self._checked = -_CHECK_EVERY_S
        self.refresh(force=True)

    def __len__(self) -> int:
        return len(self._ids)

    def refresh(self, force: bool = False) -> None:
        """Re-read the file if it changed (and a second has passed, unless ``force``)."""
        now = self.clock()
        if not force and now - self._checked < _CHECK_EVERY_S:
            return
        self._checked = now
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._ids, self._stamp = frozenset(), None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._ids = frozenset(orjson.loads(self.path.read_bytes()).get("ids", []))
            self._stamp = stamp

    def holds(self, message: dict[str, Any]) -> bool:
        """Whether the message's anonymousId or userId is forgotten."""
        self.refresh()
        if not self._ids:
            return False
        for key in ("anonymousId", "userId"):
            value = message.get(key)
            if value is not None and str(value) in self._ids:
                return True
        return False

    def add(self, ids: Iterable[str]) -> None:
        """Add ``ids`` durably (one writer at a time: concurrent forgets both count)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / (self.path.name + ".lock")).open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            self.refresh(force=True)
            merged = sorted(self._ids | set(ids))
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                fh.write(orjson.dumps({"ids": merged}))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            fsync_path(self.path.parent)
            self.refresh(force=True)
