"""``autocap segment check``: is each segment worth a campaign, and are they different?

For a set of segments, as of now:

- size and share of the base; **too small** below ``AUTOCAP_SEGMENT_MIN_SIZE`` members;
- overlap: the Jaccard index of every pair over the same kind; **duplicate** at or above
  ``DUPLICATE_JACCARD``;
- distinctness: the share of members who did the conversion event
  (``segment_rules.quality.conversion_event``, or ``--convert``) in the conversion window,
  with a 95% Wilson interval; two segments whose intervals overlap are **not distinct**;
- stability: Jaccard between the members now and in the snapshot at least 7 days older
  (``segment_history``); **unstable** below ``UNSTABLE_JACCARD``;
- coverage: the share of the base (people, accounts) in none of the checked segments.

Verdicts are plain words with the numbers behind them; ``ok`` when nothing is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import duckdb

from pipeline.errors import SegmentError
from pipeline.segments.engine import SegmentEngine
from pipeline.segments.history import members_on
from pipeline.segments.spec import Performed, SegmentDefinition

__all__ = [
    "DUPLICATE_JACCARD",
    "UNSTABLE_JACCARD",
    "QualityReport",
    "SegmentQuality",
    "check_segments",
    "jaccard",
    "wilson_interval",
]

DUPLICATE_JACCARD = 0.9
UNSTABLE_JACCARD = 0.5
_WEEK = timedelta(days=7)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def jaccard(a: set[str], b: set[str]) -> float:
    """Shared members over all members of either; two empty sets are identical (1.0)."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


@dataclass
class SegmentQuality:
    """One segment's numbers and verdicts."""

    name: str
    of: str
    size: int
    base: int
    conversion: float | None = None
    conversion_ci: tuple[float, float] | None = None
    stability: float | None = None
    stability_from: str | None = None
    verdicts: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        """Share of the base (people or accounts) in the segment."""
        return self.size / self.base if self.base else 0.0

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--format json``."""
        return {
            "segment": self.name,
            "of": self.of,
            "size": self.size,
            "base": self.base,
            "share": self.share,
            "conversion": self.conversion,
            "conversion_ci": list(self.conversion_ci) if self.conversion_ci else None,
            "stability": self.stability,
            "stability_from": self.stability_from,
            "verdicts": self.verdicts or ["ok"],
        }


@dataclass
class QualityReport:
    """Every checked segment, the overlap matrix and the coverage per kind."""

    segments: list[SegmentQuality]
    overlap: dict[str, dict[str, float]]
    coverage: dict[str, dict[str, float]]  # kind -> {uncovered, base, share}
    conversion_event: str | None
    min_size: int

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--format json``."""
        return {
            "segments": [s.to_json() for s in self.segments],
            "overlap": self.overlap,
            "coverage": self.coverage,
            "conversion_event": self.conversion_event,
            "min_size": self.min_size,
        }


def _stability(
    con: duckdb.DuckDBPyConnection, q: SegmentQuality, members: set[str], engine: SegmentEngine
) -> None:
    try:
        day, before = members_on(con, q.name, (engine.now - _WEEK).date())
    except SegmentError:
        return  # no history a week back (or none at all): nothing to say yet
    q.stability, q.stability_from = jaccard(members, set(before)), day.isoformat()
    if q.stability < UNSTABLE_JACCARD:
        q.verdicts.append(
            f"unstable: only {q.stability:.0%} the same members as on {q.stability_from}"
        )


def check_segments(
    engine: SegmentEngine,
    segments: list[SegmentDefinition],
    *,
    min_size: int,
    conversion_event: str | None,
    conversion_window: timedelta = 30 * timedelta(days=1),
) -> QualityReport:
    """The quality report for ``segments`` (computed live on the engine's connection)."""
    members = {s.name: set(engine.members(s)) for s in segments}
    bases = {kind: set(engine.base_ids(kind)) for kind in {s.of for s in segments}}
    converted: dict[str, set[str]] = {}
    if conversion_event:
        for kind in bases:
            probe = SegmentDefinition(
                "conversion", kind, Performed(conversion_event, 1, None, conversion_window)
            )
            converted[kind] = set(engine.members(probe))
    report: list[SegmentQuality] = []
    for s in segments:
        q = SegmentQuality(s.name, s.of, len(members[s.name]), len(bases[s.of]))
        if q.size < min_size:
            q.verdicts.append(f"too small: {q.size} members, below the minimum of {min_size}")
        if conversion_event and q.size:
            hits = len(members[s.name] & converted[s.of])
            q.conversion, q.conversion_ci = hits / q.size, wilson_interval(hits, q.size)
        _stability(engine.con, q, members[s.name], engine)
        report.append(q)
    overlap: dict[str, dict[str, float]] = {}
    for a in report:
        overlap[a.name] = {}
        for b in report:
            if a.of == b.of:
                overlap[a.name][b.name] = jaccard(members[a.name], members[b.name])
    for i, a in enumerate(report):
        for b in report[i + 1 :]:
            if a.of != b.of:
                continue
            j = overlap[a.name][b.name]
            if j >= DUPLICATE_JACCARD:
                for x, y in ((a, b), (b, a)):
                    x.verdicts.append(f"duplicate: {j:.0%} of members shared with {y.name}")
            elif a.conversion_ci and b.conversion_ci and _overlapping(a, b):
                for x, y in ((a, b), (b, a)):
                    x.verdicts.append(
                        f"not distinct from {y.name} on {conversion_event}: "
                        f"{_rate(x)} vs {_rate(y)}"
                    )
    coverage = {}
    for kind, base in bases.items():
        covered = set().union(*(members[s.name] for s in segments if s.of == kind))
        uncovered = len(base - covered)
        coverage[kind] = {
            "uncovered": uncovered,
            "base": len(base),
            "share": uncovered / len(base) if base else 0.0,
        }
    return QualityReport(report, overlap, coverage, conversion_event, min_size)


def _overlapping(a: SegmentQuality, b: SegmentQuality) -> bool:
    assert a.conversion_ci and b.conversion_ci
    return a.conversion_ci[0] <= b.conversion_ci[1] and b.conversion_ci[0] <= a.conversion_ci[1]


def _rate(q: SegmentQuality) -> str:
    assert q.conversion is not None and q.conversion_ci is not None
    lo, hi = q.conversion_ci
    return f"{q.conversion:.0%} [{lo:.0%}-{hi:.0%}]"
