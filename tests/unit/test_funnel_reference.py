"""What windowFunnel cannot check: unordered mode, exclusions and per-step windows against a
brute-force reference over every chain; the spec's errors; the real CLI."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import FunnelError
from pipeline.warehouse.funnel_scan import ordered_scan, unordered_scan
from pipeline.warehouse.funnel_spec import FunnelSpec
from tests.unit.funnel_lake import build_lake

N = 3
W = 1000


def people(seed: int, count: int = 120) -> list[list[tuple[int, int]]]:
    """Per person: (time, code) events; code 1..3 a step, -1 the exclusion event."""
    rng = random.Random(seed)
    return [
        [(rng.randrange(0, 3000, 100), rng.choice([1, 2, 3, -1])) for _ in range(rng.randint(1, 7))]
        for _ in range(count)
    ]


def scan_input(groups: list[list[tuple[int, int]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = sorted((g, t, c) for g, events in enumerate(groups) for t, c in events)
    arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].astype(np.int8)


def brute_ordered(events, step_windows=None, excluded=None) -> int:
    """Deepest chain: strictly increasing times within W of step 1, per-step windows from
    the previous step, no exclusion strictly between consecutive steps a < j <= b."""
    best = 0
    excl = [t for t, c in events if c == -1]
    for k in range(1, N + 1):
        pools = [[t for t, c in events if c == j] for j in range(1, k + 1)]
        for chain in itertools.product(*pools):
            ok = all(chain[i] < chain[i + 1] for i in range(k - 1)) and chain[-1] - chain[0] <= W
            if ok and step_windows:
                ok = all(chain[i + 1] - chain[i] <= step_windows[i] for i in range(k - 1))
            if ok and excluded:
                a, b = excluded
                ok = not any(
                    chain[j - 2] < x < chain[j - 1]
                    for j in range(a + 1, min(b, k) + 1)
                    for x in excl
                )
            if ok:
                best = max(best, k)
    return best


def brute_unordered(events) -> int:
    steps = [(t, c) for t, c in events if c >= 1]
    return max((len({c for t, c in steps if t0 <= t <= t0 + W}) for t0, _ in steps), default=0)


@pytest.mark.parametrize("seed", range(4))
def test_exclusions_and_step_windows_match_brute_force(seed: int) -> None:
    groups = people(seed)
    g, t, c = scan_input(groups)
    for kwargs in (
        {"excluded_between": ((1, 3),)},
        {"excluded_between": ((2, 3),)},
        {"step_windows": (300, 500)},
        {"step_windows": (300, 500), "excluded_between": ((1, 2),)},
    ):
        result = ordered_scan(g, t, c, len(groups), N, W, **kwargs)
        sw = kwargs.get("step_windows")
        ex = kwargs.get("excluded_between", (None,))[0]
        expected = [brute_ordered(e, sw, ex) for e in groups]
        assert result.level.tolist() == expected, kwargs


@pytest.mark.parametrize("strict", [False, True])
def test_a_step_nobody_does_stops_the_chain(strict: bool) -> None:
    # Steps 1 and 3 occur, step 2 never: everyone stays at level 1 (this used to crash).
    groups = [[(0, 1), (100, 3)], [(0, 1), (50, 1), (900, 3)], [(10, 3)]]
    g, t, c = scan_input(groups)
    result = ordered_scan(g, t, c, len(groups), N, W, strict=strict)
    assert result.level.tolist() == [1, 1, 0]
    assert [brute_ordered(e) for e in groups] == [1, 1, 0]


@pytest.mark.parametrize("seed", range(4))
def test_unordered_matches_brute_force(seed: int) -> None:
    groups = people(seed)
    g, t, c = scan_input(groups)
    result = unordered_scan(g, t, c, len(groups), N, W)
    assert result.level.tolist() == [brute_unordered(e) for e in groups]
    assert 3 in result.level.tolist()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"steps": "A", "window": "1d"}, "at least 2 steps"),
        ({"steps": "A,B", "window": "1x"}, "bad window '1x'"),
        ({"steps": "A,B", "window": "1d", "mode": "sideways"}, "unknown mode 'sideways'"),
        ({"steps": "A,B", "window": "1d", "breakdown": "plan"}, "unknown property 'plan'"),
        ({"steps": "A,B", "window": "1d", "step_windows": "1h,1h"}, "needs 1 windows"),
        ({"steps": "A,B", "window": "1d", "exclude": "X:2-5"}, "bad exclusion"),
        ({"steps": "A,B", "window": "1d", "mode": "unordered", "exclude": "X"}, "need an order"),
    ],
)
def test_spec_errors_name_the_problem(raw: dict, message: str) -> None:
    with pytest.raises(FunnelError, match=message):
        FunnelSpec.from_mapping(raw)


def test_cli_json_in_flight_dropped_and_errors(tmp_path: Path) -> None:
    day = 86_400_000
    build_lake(
        tmp_path,
        [
            ("done", "Signed Up", 0),
            ("done", "Activated", 1000),
            ("done", "Paid", 5000),
            ("gone", "Signed Up", 0),
            ("gone", "Activated", 2000),  # window over: dropped
            ("open", "Signed Up", 9 * day),
            ("open", "Activated", 9 * day + 10),  # in flight
            ("none", "Activated", 0),  # never started: not in the funnel
        ],
    )
    run = [sys.executable, "-m", "pipeline", "funnel", "--data-dir", str(tmp_path)]
    args = ["--steps", "Signed Up,Activated,Paid", "--window", "1d", "--format", "json"]
    until = ["--until", "2026-01-10T12:00:00Z"]
    out = subprocess.run(run + args + until, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    steps = result["steps"]
    assert [s["count"] for s in steps] == [3, 3, 1]
    assert (steps[2]["dropped"], steps[2]["in_flight"]) == (1, 1)
    assert steps[2]["median_time_to_convert_s"] == 5.0
    assert steps[1]["conversion_from_previous"] == 1.0
    assert result["time_to_convert_s"]["p50"] == 5.0
    bad = subprocess.run([*run, "--steps", "A", "--window", "1d"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "autocap: error: a funnel needs at least 2 steps, got 1: --steps A,B[,C...]"
    )


@pytest.mark.parametrize("max_mixed_runs", [1_000, 0])
def test_entities_sharing_hash_top_bits_stay_apart(
    monkeypatch: pytest.MonkeyPatch, max_mixed_runs: int
) -> None:
    # Hashes 5 and 6 share every bit above the row index (and so do 1 << 40 and its
    # neighbour): grouping must still keep each entity's entries together, in time order,
    # whether the mixed runs are re-sorted one by one or by one argsort.
    from pipeline.warehouse import funnel
    from pipeline.warehouse.funnel import _group_entries

    monkeypatch.setattr(funnel, "_MAX_MIXED_RUNS", max_mixed_runs)
    far = 1 << 40
    entity = np.array([5, 6, 5, 6, 5, 6, far, far + 1, far, 9 << 60], dtype=np.uint64)
    ts = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90], dtype=np.int64)
    code = np.array([1, 1, 2, 2, 3, 3, 1, 1, 2, 1], dtype=np.int8)
    group, rel, codes, n_groups, _ = _group_entries(entity, ts, code, None, 0)
    assert n_groups == 5
    runs = [
        [(int(t), int(c)) for t, c in zip(rel[group == g], codes[group == g], strict=True)]
        for g in range(n_groups)
    ]
    assert sorted(runs) == [
        [(0, 1), (20, 2), (40, 3)],
        [(10, 1), (30, 2), (50, 3)],
        [(60, 1), (80, 2)],
        [(70, 1)],
        [(90, 1)],
    ]


@pytest.mark.parametrize("spec", [{}, {"mode": "unordered"}, {"breakdown": "x"}, {"entity": True}])
def test_two_threads_answer_as_one(monkeypatch: pytest.MonkeyPatch, spec: dict) -> None:
    # Large inputs are split in two by a bit of the entity hash and scanned on two threads;
    # the counts, times and per-entity rows must be those of one pass over everything.
    from pipeline.warehouse import funnel

    rng = np.random.default_rng(5)
    n = 20_000
    entity = rng.integers(0, 3_000, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    ts = 1_767_225_600_000 + rng.integers(0, 5 * 86_400_000, n)
    code = rng.integers(1, 4, n).astype(np.int8)
    value = rng.integers(0, 3, n) if "breakdown" in spec else None
    funnel_spec = FunnelSpec.from_mapping(
        {"steps": "A,B,C", "window": "1d", "mode": spec.get("mode", "ordered")}
    )

    def run(parallel_rows: int) -> object:
        monkeypatch.setattr(funnel, "_PARALLEL_ROWS", parallel_rows)
        if "entity" in spec:
            hashes, scan, latest = funnel.scan_entities(funnel_spec, entity, ts, code)
            order = np.argsort(hashes)
            return [hashes[order], scan.level[order], scan.reached_at[:, order], latest[order]]
        counted = funnel._funnel(funnel_spec, entity, ts, code, value, int(ts.max()))
        return {v: (c.steps, c.time_to_convert_s) for v, c in counted.items()}

    one, two = run(10 * n), run(0)
    if isinstance(one, list):
        assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
        assert one[0].size > 1_000
    else:
        assert one == two
        assert all(steps[2].count > 0 for steps, _ in one.values())
