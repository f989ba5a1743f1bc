"""What one measured phase produced, and the arithmetic to summarise phases and runs."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CpuMeter",
    "PhaseResult",
    "cpu_seconds",
    "machine_busy_seconds",
    "median",
    "percentile",
    "summarise",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_OTHER = "other"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-100) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time all cores spent not idle since boot (``/proc/stat``), kernel work included."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


class CpuMeter:
    """Share of one core each named process used between ``start()`` and ``shares()``.

    ``other`` is everything else the machine did meanwhile (other processes, the kernel's
    network work): a high figure means the measurement was disturbed or the kernel is busy.
    """

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = dict(pids)
        self._start: dict[str, float] = {}
        self._started_at = 0.0

    def _read(self) -> dict[str, float]:
        readings = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        readings[_OTHER] = machine_busy_seconds()
        return readings

    def start(self) -> None:
        """Take the first reading."""
        self._started_at = time.perf_counter()
        self._start = self._read()

    def shares(self) -> dict[str, float]:
        """CPU seconds per wall second since ``start()`` (1.0 is one full core)."""
        wall = time.perf_counter() - self._started_at
        used = {name: (value - self._start[name]) / wall for name, value in self._read().items()}
        ours = sum(share for name, share in used.items() if name != _OTHER)
        used[_OTHER] = max(0.0, used[_OTHER] - ours)
        return used


@dataclass(frozen=True)
class PhaseResult:
    """Events acknowledged in a timed window, their latencies, and who used the CPU."""

    events: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    #: Share of one core used during the window, per process ("collector": 0.93, ...).
    cpu: Mapping[str, float] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        """Acknowledged events per wall-clock second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """A plain dict (the bare producer process prints its result this way)."""
        return {
            "events": self.events,
            "seconds": self.seconds,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "errors": self.errors,
            "cpu": dict(self.cpu),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhaseResult:
        """The inverse of ``to_json``."""
        return cls(**{**data, "cpu": dict(data.get("cpu", {}))})


def summarise(
    events: int,
    seconds: float,
    latencies_s: Sequence[float],
    errors: int = 0,
    cpu: Mapping[str, float] | None = None,
) -> PhaseResult:
    """A ``PhaseResult`` from raw latencies in seconds."""
    return PhaseResult(
        events=events,
        seconds=seconds,
        p50_ms=percentile(latencies_s, 50) * 1000,
        p99_ms=percentile(latencies_s, 99) * 1000,
        errors=errors,
        cpu=dict(cpu or {}),
    )


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else math.nan
