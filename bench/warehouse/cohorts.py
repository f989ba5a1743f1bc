"""``python -m bench.warehouse.cohorts``: materializing 20 person cohorts, ours against plain
DuckDB SQL over the same lake.

Ours is what ``autocap verify``'s cohort check runs to compute cohorts in full (the
materializer only publishes the stream's changes as views): ``recompute_cohorts`` (every
person's lake history folded with the stream's rules, then their profile) and
``memberships`` of every state at one instant. The baseline is
``bench/warehouse/cohorts.sql``: the same 20 cohorts (``cohorts.yaml``) as one DuckDB query
over the same catalog views. On a seeded lake (``bench/warehouse/generate.py`` with regular
visitors, defined-event tags and person profiles), each run times both, alternating which
goes first, evaluated at the lake's newest event; both must find the same members in every
cohort (the SQL expresses all 20; it does not cap occurrences at the stream's 1000 per event
and person, so the run checks nobody has that many events). Reported: wall and CPU time
(this process, DuckDB's threads included) per run, the medians and the ratios ours / SQL.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import duckdb

from bench.warehouse.generate import generate_lake
from pipeline.batch.cohorts import recompute_cohorts
from pipeline.cohorts import LIMIT, cohort_plan, memberships
from pipeline.definitions import Definitions, load_definitions
from pipeline.sqlfiles import load_sql
from pipeline.warehouse.catalog import publish_catalog

__all__ = [
    "DEFINITIONS",
    "Members",
    "World",
    "baseline_members",
    "bench_sql",
    "differences",
    "main",
    "our_members",
]

_HERE = Path(__file__).resolve().parent
#: The 20 cohorts, copied into the run's directory as its definitions.yaml.
DEFINITIONS = _HERE / "cohorts.yaml"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# The opt-in generator extras that give every kind of criterion members.
_REGULARS, _DEFINED = 0.1, 0.3

Members = dict[str, set[str]]
T = TypeVar("T")


def bench_sql(name: str) -> str:
    """The text of ``bench/warehouse/<name>.sql``."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"bad bench SQL name {name!r}")
    return (_HERE / f"{name}.sql").read_text(encoding="utf-8")


class World:
    """A generated lake under ``root``, its published catalog and the cohort definitions."""

    def __init__(self, root: Path, events: int, persons: int, seed: int = 7) -> None:
        lake = generate_lake(
            root / "lake",
            events,
            persons,
            seed=seed,
            regulars=_REGULARS,
            defined=_DEFINED,
            profiles=True,
        )
        self.warehouse = publish_catalog(root / "warehouse.duckdb", lake)
        self.definitions_path = root / "definitions.yaml"
        shutil.copyfile(DEFINITIONS, self.definitions_path)
        self.definitions: Definitions = load_definitions(self.definitions_path)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the catalog, as analysts and ``autocap verify`` open it."""
        return duckdb.connect(str(self.warehouse), read_only=True)

    def as_of(self) -> datetime:
        """The instant both sides evaluate at: the lake's newest event."""
        with self.connect() as con:
            row = con.execute(load_sql("verify/newest_event")).fetchone()
        assert row is not None and isinstance(row[0], datetime), "empty lake"
        return row[0].astimezone(UTC)

    def busiest(self) -> int:
        """Most events any one person has (an upper bound on kept occurrences)."""
        with self.connect() as con:
            row = con.execute(bench_sql("busiest_person")).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def our_members(
    con: duckdb.DuckDBPyConnection, definitions: Definitions, as_of: datetime
) -> Members:
    """Each person cohort's members at ``as_of``, computed as ``autocap verify`` does
    (which also evaluates in full, for the criterion, the few subjects that differ)."""
    persons, accounts = cohort_plan(definitions, "person"), cohort_plan(definitions, "account")
    members: Members = {c.name: set() for c in persons.cohorts}
    for (kind, subject), state in recompute_cohorts(con, persons, accounts).items():
        if kind != "person":
            continue
        for name in memberships(state, persons, as_of):
            members[name].add(subject)
    return members


def baseline_members(
    con: duckdb.DuckDBPyConnection, definitions: Definitions, as_of: datetime
) -> Members:
    """The same memberships from ``cohorts.sql``: plain DuckDB SQL."""
    members: Members = {c.name: set() for c in definitions.cohorts}
    as_of_ms = (as_of - _EPOCH) // _MS
    for cohort, person in con.execute(bench_sql("cohorts"), {"as_of": as_of_ms}).fetchall():
        members.setdefault(cohort, set()).add(person)
    return members


def differences(ours: Members, theirs: Members) -> dict[str, tuple[int, int]]:
    """Cohort -> (members only ours has, members only the SQL has), where they differ."""
    out = {}
    for name in sorted(set(ours) | set(theirs)):
        mine, sql = ours.get(name, set()), theirs.get(name, set())
        if mine != sql:
            out[name] = (len(mine - sql), len(sql - mine))
    return out


def _cpu() -> float:
    """CPU seconds of this process, every thread (DuckDB's too)."""
    times = os.times()
    return times.user + times.system


def _timed(run: Callable[[], T]) -> tuple[T, float, float]:
    t0, c0 = time.perf_counter(), _cpu()
    result = run()
    return result, time.perf_counter() - t0, _cpu() - c0


def _side(world: World, compute: Callable[..., Members], as_of: datetime) -> Callable[[], Members]:
    def run() -> Members:
        # Connecting is part of what a user waits for, on both sides.
        with world.connect() as con:
            return compute(con, world.definitions, as_of)

    return run


def main() -> int:
    """Run the benchmark; returns the exit code (1 when the two sides disagree)."""
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse.cohorts")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        world = World(Path(tmp), args.events, args.persons)
        as_of = world.as_of()
        busiest = world.busiest()
        print(
            f"generated {args.events:,} events / {args.persons:,} persons in"
            f" {time.perf_counter() - started:.1f} s; {len(world.definitions.cohorts)} cohorts"
            f" at {as_of.isoformat()}; busiest person {busiest} events",
            flush=True,
        )
        if busiest >= LIMIT:  # the SQL does not cap occurrences: it would differ
            print(f"a person has {busiest} events, at or over the kept limit {LIMIT}")
            return 1
        sides = {"autocap": our_members, "sql": baseline_members}
        wall: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        for run in range(1, args.runs + 1):
            order = list(sides) if run % 2 else list(reversed(sides))  # alternate who goes first
            found: dict[str, Members] = {}
            for name in order:
                found[name], w, c = _timed(_side(world, sides[name], as_of))
                wall[name].append(w)
                cpu[name].append(c)
            wrong = differences(found["autocap"], found["sql"])
            if wrong:
                print(f"MISMATCH (cohort: only ours, only SQL): {wrong}")
                return 1
            if run == 1:
                counts = ", ".join(f"{n} {len(m):,}" for n, m in found["autocap"].items())
                print(f"members (equal on both sides): {counts}")
            print(
                f"run {run} ({' first, '.join(order)} second): autocap {wall['autocap'][-1]:.2f} s"
                f" (CPU {cpu['autocap'][-1]:.2f} s), sql {wall['sql'][-1]:.3f} s"
                f" (CPU {cpu['sql'][-1]:.3f} s), ratio {wall['autocap'][-1] / wall['sql'][-1]:.1f}"
                f" (CPU {cpu['autocap'][-1] / cpu['sql'][-1]:.1f})",
                flush=True,
            )
        ours = statistics.median(wall["autocap"]), statistics.median(cpu["autocap"])
        sql = statistics.median(wall["sql"]), statistics.median(cpu["sql"])
        print(
            f"median of {args.runs}: autocap {ours[0]:.2f} s (CPU {ours[1]:.2f} s), sql"
            f" {sql[0]:.3f} s (CPU {sql[1]:.3f} s); ratio wall {ours[0] / sql[0]:.1f}x, CPU"
            f" {ours[1] / sql[1]:.1f}x; load average at end: {os.getloadavg()[0]:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
