"""Seeded synthetic lake for the warehouse benchmark: ``events`` Parquet files like the sink's.

Each person is active over a few days starting on a random day of the period; their events
are a mix of autocaptured noise (``$pageview``, ``$click``, ...) and the product events a
funnel asks about (``Signed Up``, ``Activated``, ``Purchased``), so a 1-day, 3-step funnel
has real work to do: repeats, out-of-order steps, attempts that time out. Timestamps are
whole milliseconds, as the lake stores them. Fully vectorized, so 10M events take seconds.

Opt-in extras (the cohort bench; defaults leave the lake exactly as before, so the funnel
benches measure the same data): ``regulars``, a share of people whose events spread over the
whole period (up to the newest event) instead of a few days; ``defined``, a share of the
events stage 1 would tag with a defined event (``DEFINED_EVENTS``, in the ``defined_events``
column); ``profiles``, one profile per person (plan and lead score properties, a country) in
the ``profiles`` table. They draw from their own random stream, never from the events' one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import (
    EVENT_SCHEMA,
    IDENTITY_SCHEMA,
    PROFILE_SCHEMA,
    SESSION_SCHEMA,
)

__all__ = [
    "COUNTRIES",
    "DEFINED_EVENTS",
    "EVENT_NAMES",
    "FUNNEL_STEPS",
    "generate_lake",
    "replay_events",
]

#: The funnel the benchmark runs, then the noise; weights are per event.
FUNNEL_STEPS = ("Signed Up", "Activated", "Purchased")
EVENT_NAMES = (*FUNNEL_STEPS, "$pageview", "$click", "$change", "$submit", "Viewed Pricing")
_WEIGHTS = np.array([0.05, 0.04, 0.03, 0.45, 0.25, 0.08, 0.05, 0.05])
_PLANS = ("free", "pro", "enterprise")
COUNTRIES = ("US", "DE", "FR", "GB", "IN")
#: Defined event -> the event names it can tag (a share ``defined`` of them is tagged).
DEFINED_EVENTS = {
    "Pricing Page": ("$pageview", "Viewed Pricing"),
    "Key Action": ("$submit", "Activated", "Purchased"),
}
_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_DAY_MS = 86_400_000


def _strings(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def _defined_tags(names: np.ndarray, share: float, rng: np.random.Generator) -> pa.Array:
    """A ``defined_events`` list per event: a ``share`` of the events each defined event can
    tag are tagged with it (the names of ``DEFINED_EVENTS`` tag disjoint events)."""
    tags = np.full(len(names), "", dtype=object)
    drawn = rng.random(len(names)) < share
    for defined, sources in DEFINED_EVENTS.items():
        codes = [EVENT_NAMES.index(s) for s in sources]
        tags[drawn & np.isin(names, codes)] = defined
    tagged = tags != ""
    offsets = np.concatenate([[0], np.cumsum(tagged)]).astype(np.int32)
    values = pa.array(tags[tagged].astype(str), pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _write_profiles(lake: Lake, persons: int, rng: np.random.Generator) -> None:
    """One profile per person, as stage 2 would have last emitted it."""
    lake.ensure_table("profiles", PROFILE_SCHEMA)
    plan = np.array(_PLANS)[rng.integers(0, len(_PLANS), persons)]
    score = rng.integers(0, 100, persons)
    props = pc.binary_join_element_wise(
        '{"plan":"', pa.array(plan), '","lead_score":', pa.array(score).cast(pa.string()), "}", ""
    )
    columns = {
        "person_id": _strings("u:", np.arange(persons)),
        "version": pa.array(np.ones(persons, dtype=np.int64)),
        "country": pa.array(np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), persons)]),
        "properties": props,
    }
    arrays = [
        columns[f.name] if f.name in columns else pa.nulls(persons, f.type) for f in PROFILE_SCHEMA
    ]
    lake.write("profiles", pa.Table.from_arrays(arrays, schema=PROFILE_SCHEMA))


def generate_lake(
    root: Path,
    events: int,
    persons: int,
    *,
    days: int = 30,
    files: int = 10,
    seed: int = 7,
    regulars: float = 0.0,
    defined: float = 0.0,
    profiles: bool = False,
) -> Lake:
    """Write ``events`` events of ``persons`` people into a new lake under ``root``
    (``regulars``, ``defined``, ``profiles``: the opt-in extras of the module docstring)."""
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, 1])  # the extras' own stream
    lake = Lake(root)
    for table, schema in (
        ("events", EVENT_SCHEMA),
        ("sessions", SESSION_SCHEMA),
        ("identities", IDENTITY_SCHEMA),
    ):
        lake.ensure_table(table, schema)
    person = rng.integers(0, persons, events)
    first_day = rng.integers(0, days, persons)
    # Most of a person's events fall within hours of each other, some days later.
    offset = rng.exponential(6 * 3_600_000, events) + rng.integers(0, 3, events) * _DAY_MS
    ts = _START_MS + first_day[person] * _DAY_MS + offset.astype(np.int64)
    if regulars:
        # Up to the newest event, so "now" (evaluating at the newest event) finds them active.
        regular = (extra.random(persons) < regulars)[person]
        spread = extra.integers(0, ts.max() - _START_MS + 1, int(regular.sum()))
        ts[regular] = _START_MS + spread
    order = np.argsort(ts, kind="stable")  # the sink writes in arrival order
    person, ts = person[order], ts[order]
    names = rng.choice(len(EVENT_NAMES), events, p=_WEIGHTS / _WEIGHTS.sum())
    plan = rng.integers(0, len(_PLANS), events)
    tags = _defined_tags(names, defined, extra) if defined else None
    per_file = -(-events // files)
    for start in range(0, events, per_file):
        part = slice(start, min(start + per_file, events))
        n = part.stop - part.start
        stamps = pa.array(ts[part], pa.timestamp("ms", tz="UTC"))
        props = pc.binary_join_element_wise(
            '{"plan":"', pa.array(np.array(_PLANS)[plan[part]]), '"}', ""
        )
        columns = {
            "event_id": _strings("e", np.arange(part.start, part.stop)),
            "type": pa.array(["track"] * n),
            "event": pa.array(np.array(EVENT_NAMES)[names[part]]),
            "anonymous_id": _strings("d", person[part]),
            "person_id": _strings("u:", person[part]),
            "timestamp": stamps,
            "received_at": stamps,
            "properties": props,
        }
        if tags is not None:
            columns["defined_events"] = tags.slice(part.start, n)
        arrays = [
            columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in EVENT_SCHEMA
        ]
        lake.write("events", pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA))
    if profiles:
        _write_profiles(lake, persons, extra)
    return lake


def replay_events(lake: Lake, count: int) -> None:
    """Write copies of the first ``count`` events of the lake's first file as a new file,
    received a minute later: what a sink that crashed after writing but before committing
    leaves behind. Every reader must count each of them once (the earlier copy)."""
    first = pq.read_table(lake.data_files("events")[0]).slice(0, count)
    later = pc.add(first.column("received_at"), pa.scalar(60_000, pa.duration("ms")))
    index = first.schema.get_field_index("received_at")
    lake.write("events", first.set_column(index, "received_at", later))
