"""What a funnel asks: steps, window, mode, who converts, exclusions, breakdown, period.

``FunnelSpec.from_mapping`` takes the same keys as the ``autocap funnel`` flags (``steps``,
``window``, ``step_windows``, ``mode``, ``by``, ``exclude``, ``breakdown``, ``since``,
``until``, ``trend``), so a funnel from ``definitions.yaml`` and one from the command line
are validated by the same code, with the same errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.errors import FunnelError
from pipeline.timeutil import parse_ts

__all__ = [
    "ACCOUNT_COLUMNS",
    "ENTITY_SOURCES",
    "MODES",
    "PERSON_COLUMNS",
    "Exclusion",
    "FunnelSpec",
    "parse_duration_ms",
]

MODES = ("ordered", "strict", "unordered")
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"\s*(\d+)\s*(ms|s|m|h|d|w)\s*")
#: Columns of ``events`` a breakdown may name directly (identifiers only from this list).
BREAKDOWN_COLUMNS = ("event", "type", "account_id", "session_id", "anonymous_id", "user_id")
_JSON_SOURCES = ("properties", "context", "traits")
#: Columns of the ``persons`` and ``accounts`` views a breakdown may name (``person.X``,
#: ``account.X``): each entity's current value, not the value at its step-1 event.
PERSON_COLUMNS = (
    "browser",
    "os",
    "device",
    "country",
    "email_domain",
    "email_kind",
    "initial_referrer",
    "initial_utm_source",
)
ACCOUNT_COLUMNS = (
    "name",
    "industry",
    "employees",
    "employee_band",
    "annual_revenue",
    "revenue_band",
    "country",
    "region",
    "sic_code",
    "naics_code",
    "lead_score",
)
#: Breakdown sources valued per entity (person or account), not per event.
ENTITY_SOURCES = ("person", "person.traits", "person.properties", "account", "account.traits")
_ENTITY_COLUMNS = {("person", c) for c in PERSON_COLUMNS} | {
    ("account", c) for c in ACCOUNT_COLUMNS
}
#: Sources whose breakdown names a JSON path.
_PATH_SOURCES = (*_JSON_SOURCES, "person.traits", "person.properties", "account.traits")
_KEY = re.compile(r"[A-Za-z0-9_\-$]+")
MAX_STEPS = 20
MAX_EXCLUSIONS = 10


def parse_duration_ms(text: str, what: str = "window") -> int:
    """``30m``, ``1d``, ``7d``, ``90s``, ``250ms`` → milliseconds; a clear error otherwise."""
    match = _DURATION.fullmatch(str(text))
    if not match or int(match.group(1)) <= 0:
        raise FunnelError(
            f"bad {what} {text!r}: use a positive number and a unit (ms, s, m, h, d, w), "
            "e.g. 30m, 1d, 7d"
        )
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


@dataclass(frozen=True)
class Exclusion:
    """An event that must not happen strictly between steps ``after`` and ``before``."""

    event: str
    after: int
    before: int


def _parse_exclusion(text: str, n_steps: int) -> Exclusion:
    name, sep, between = str(text).rpartition(":")
    if not sep or not re.fullmatch(r"\d+-\d+", between):
        return Exclusion(str(text).strip(), 1, n_steps)
    a, b = (int(x) for x in between.split("-"))
    if not 1 <= a < b <= n_steps:
        raise FunnelError(
            f"bad exclusion {text!r}: steps must satisfy 1 <= A < B <= {n_steps} in EVENT:A-B"
        )
    return Exclusion(name.strip(), a, b)


def _parse_breakdown(text: str) -> tuple[str, str]:
    """``properties.plan`` → (``properties``, ``$."plan"``); a column → (column, '');
    ``person.country`` → (``person``, ``country``); ``account.traits.tier`` →
    (``account.traits``, ``$."tier"``)."""
    if text in BREAKDOWN_COLUMNS:
        return text, ""
    source, _, path = text.partition(".")
    if (source, path) in _ENTITY_COLUMNS:
        return source, path
    if source in ("person", "account"):  # person.traits.KEY: the source is person.traits
        sub, _, path = path.partition(".")
        source = f"{source}.{sub}"
    keys = path.split(".") if path else []
    if source not in _PATH_SOURCES or not keys or not all(_KEY.fullmatch(k) for k in keys):
        raise FunnelError(
            f"unknown property {text!r} for --breakdown: use properties.KEY, context.KEY.KEY, "
            f"traits.KEY, a column ({', '.join(BREAKDOWN_COLUMNS)}), person.traits.KEY, "
            f"person.properties.KEY, person.COLUMN ({', '.join(PERSON_COLUMNS)}), "
            f"account.traits.KEY or account.COLUMN ({', '.join(ACCOUNT_COLUMNS)})"
        )
    return source, "$." + ".".join(f'"{k}"' for k in keys)


def _time(value: Any, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise FunnelError(f"{what} must carry a timezone")
        return value
    parsed = parse_ts(str(value))
    if parsed is None:
        raise FunnelError(f"bad {what} {value!r}: use an ISO-8601 time such as 2026-01-31")
    return parsed


def _names(value: Any, what: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value or ())
    names = tuple(str(item).strip() for item in items)
    if any(not name for name in names):
        raise FunnelError(f"{what}: empty step name in {value!r}")
    return names


@dataclass(frozen=True)
class FunnelSpec:
    """A validated funnel. Times are milliseconds; steps are event or defined-event names."""

    steps: tuple[str, ...]
    window_ms: int
    mode: str = "ordered"
    step_windows_ms: tuple[int, ...] | None = None
    by: str = "person"
    exclusions: tuple[Exclusion, ...] = ()
    breakdown: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    trend: str | None = None

    def __post_init__(self) -> None:
        n = len(self.steps)
        if n < 2:
            raise FunnelError(f"a funnel needs at least 2 steps, got {n}: --steps A,B[,C...]")
        if n > MAX_STEPS:
            raise FunnelError(f"a funnel has at most {MAX_STEPS} steps, got {n}")
        if self.mode not in MODES:
            raise FunnelError(f"unknown mode {self.mode!r}: use {', '.join(MODES)}")
        if self.by not in ("person", "account"):
            raise FunnelError(f"unknown --by {self.by!r}: use person or account")
        if self.step_windows_ms is not None:
            if len(self.step_windows_ms) != n - 1:
                raise FunnelError(
                    f"--step-windows needs {n - 1} windows (one per step after the first), "
                    f"got {len(self.step_windows_ms)}"
                )
            if self.mode == "unordered":
                raise FunnelError("per-step windows need an order: use --mode ordered or strict")
        if self.exclusions and self.mode == "unordered":
            raise FunnelError("exclusions need an order: use --mode ordered or strict")
        if len(self.exclusions) > MAX_EXCLUSIONS:
            raise FunnelError(f"at most {MAX_EXCLUSIONS} exclusions, got {len(self.exclusions)}")
        for exclusion in self.exclusions:
            if exclusion.event in self.steps:
                raise FunnelError(f"{exclusion.event!r} is a step; it cannot also be excluded")
        if self.breakdown is not None:
            source, _ = _parse_breakdown(self.breakdown)
            if source.startswith("person") and self.by == "account":
                raise FunnelError(
                    f"--breakdown {self.breakdown} splits people, but --by account counts "
                    "accounts: use account.COLUMN, account.traits.KEY or an event property"
                )
        if self.trend not in (None, "day", "week"):
            raise FunnelError(f"unknown --trend {self.trend!r}: use day or week")
        if self.trend and self.breakdown:
            raise FunnelError("use --trend or --breakdown, not both")
        if self.since and self.until and self.since >= self.until:
            raise FunnelError("--since must be before --until")

    @property
    def breakdown_source(self) -> tuple[str, str]:
        """Where the breakdown value comes from: (source, JSON path or column) or ('', '')."""
        return _parse_breakdown(self.breakdown) if self.breakdown else ("", "")

    @property
    def entity_breakdown(self) -> bool:
        """Whether the breakdown is a person's or account's property (one value per entity,
        looked up once) rather than the step-1 event's."""
        return self.breakdown_source[0] in ENTITY_SOURCES

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> FunnelSpec:
        """Build from CLI-style keys (a definitions entry, or the parsed flags)."""
        known = {"steps", "window", "step_windows", "mode", "by", "exclude", "breakdown"}
        known |= {"since", "until", "trend", "name"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise FunnelError(f"unknown funnel keys: {', '.join(unknown)}")
        if "steps" not in raw or "window" not in raw:
            raise FunnelError("a funnel needs steps and window")
        steps = _names(raw["steps"], "steps")
        step_windows = raw.get("step_windows")
        excludes = raw.get("exclude") or ()
        if isinstance(excludes, str):
            excludes = [excludes]
        return cls(
            steps=steps,
            window_ms=parse_duration_ms(raw["window"]),
            mode=str(raw.get("mode") or "ordered"),
            step_windows_ms=(
                None
                if step_windows in (None, "")
                else tuple(
                    parse_duration_ms(w, "step window")
                    for w in _names(step_windows, "step_windows")
                )
            ),
            by=str(raw.get("by") or "person"),
            exclusions=tuple(_parse_exclusion(e, len(steps)) for e in excludes),
            breakdown=raw.get("breakdown") or None,
            since=_time(raw.get("since"), "since"),
            until=_time(raw.get("until"), "until"),
            trend=raw.get("trend") or None,
        )
