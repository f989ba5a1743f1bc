"""Seeded synthetic lake for the warehouse benchmark: ``events`` Parquet files like the sink's.

Each person is active over a few days starting on a random day of the period; their events
are a mix of autocaptured noise (``$pageview``, ``$click``, ...) and the product events a
funnel asks about (``Signed Up``, ``Activated``, ``Purchased``), so a 1-day, 3-step funnel
has real work to do: repeats, out-of-order steps, attempts that time out. Timestamps are
whole milliseconds, as the lake stores them. Fully vectorized, so 10M events take seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import EVENT_SCHEMA, IDENTITY_SCHEMA, SESSION_SCHEMA

__all__ = ["EVENT_NAMES", "FUNNEL_STEPS", "generate_lake", "replay_events"]

#: The funnel the benchmark runs, then the noise; weights are per event.
FUNNEL_STEPS = ("Signed Up", "Activated", "Purchased")
EVENT_NAMES = (*FUNNEL_STEPS, "$pageview", "$click", "$change", "$submit", "Viewed Pricing")
_WEIGHTS = np.array([0.05, 0.04, 0.03, 0.45, 0.25, 0.08, 0.05, 0.05])
_PLANS = ("free", "pro", "enterprise")
_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_DAY_MS = 86_400_000


def _strings(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def generate_lake(
    root: Path, events: int, persons: int, *, days: int = 30, files: int = 10, seed: int = 7
) -> Lake:
    """Write ``events`` events of ``persons`` people into a new lake under ``root``."""
    rng = np.random.default_rng(seed)
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
    order = np.argsort(ts, kind="stable")  # the sink writes in arrival order
    person, ts = person[order], ts[order]
    names = rng.choice(len(EVENT_NAMES), events, p=_WEIGHTS / _WEIGHTS.sum())
    plan = rng.integers(0, len(_PLANS), events)
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
        arrays = [
            columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in EVENT_SCHEMA
        ]
        lake.write("events", pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA))
    return lake


def replay_events(lake: Lake, count: int) -> None:
    """Write copies of the first ``count`` events of the lake's first file as a new file,
    received a minute later: what a sink that crashed after writing but before committing
    leaves behind. Every reader must count each of them once (the earlier copy)."""
    first = pq.read_table(lake.data_files("events")[0]).slice(0, count)
    later = pc.add(first.column("received_at"), pa.scalar(60_000, pa.duration("ms")))
    index = first.schema.get_field_index("received_at")
    lake.write("events", first.set_column(index, "received_at", later))
