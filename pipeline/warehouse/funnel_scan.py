"""The funnel scan: vectorized passes over entries sorted by (group, time, code ascending).

An *entry* is one (group, timestamp in ms, code) triple: code ``1..n`` is a funnel step (an
event matching two steps gives two entries), ``0`` any other event (strict mode only) and
``-k`` the ``k``-th exclusion event. Entries arrive sorted by group, then time, then code
ascending, the order ClickHouse's ``windowFunnel`` processes same-millisecond rows in: other
events first, then step 1, step 2... So a step never chains from a step at the same
millisecond (``strict_increase``), and a step-``j-1`` event at the same millisecond as a
step-``j`` event replaces the attempt that step ``j`` would have extended, which then fails.

Ordered and strict modes compute, for every entry of step ``j``, ``first[j]``: the latest
step-1 timestamp of any valid chain of steps ``1..j`` ending at that entry. Keeping only the
latest start is enough because a later start leaves more of the window for the next steps,
and the time of the chain's last step is the entry's own. So ``first[j]`` is a range maximum
of ``first[j-1]`` over the step ``j-1`` entries strictly before it (and, with per-step windows
or exclusions, not too far before it), valid if within the window. This is exactly the level
ClickHouse's ``windowFunnel(w, 'strict_increase')`` computes, one pass per step.

Within a group, ``first[j]`` never decreases over the valid step-``j`` entries (by induction:
``first[1]`` is the entry's own time; a later entry sees a superset, or a window of the
same sequence that only slides forward), so that range maximum is simply the last valid
step ``j-1`` entry in range: one binary search and one gather per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ScanResult", "ordered_scan", "unordered_scan"]

I64 = npt.NDArray[np.int64]
NONE = np.iinfo(np.int64).min  # "no valid chain ends here"

OTHER = 0


@dataclass(frozen=True)
class ScanResult:
    """Per group: the deepest step reached, and per step the first time it was reached.

    ``reached_at[j - 1, g]`` is the timestamp at which group ``g`` first reached step ``j``
    and ``started_at[j - 1, g]`` the step-1 time of that chain (``NONE`` if never reached).
    """

    level: npt.NDArray[np.int8]
    reached_at: I64
    started_at: I64


def _group_bounds(group: I64, n_groups: int) -> tuple[I64, I64]:
    starts = np.searchsorted(group, np.arange(n_groups), "left").astype(np.int64)
    ends = np.searchsorted(group, np.arange(n_groups), "right").astype(np.int64)
    return starts, ends


def _packed(group: I64, ts: I64, span: int) -> I64:
    """(group, time) packed in one sortable int64: ``group * span + time``."""
    return group * span + ts


def _last_in_range(values: I64, lo: I64, hi: I64) -> I64:
    """``max(values[lo:hi])`` for each query (``NONE`` where empty), given ``values``
    non-decreasing within each group and ``lo <= hi`` inside one group: the last one."""
    out = np.full(lo.shape, NONE, dtype=np.int64)
    ok = hi > lo
    out[ok] = values[hi[ok] - 1]
    return out


def _latest_before(group: I64, ts: I64, code: npt.NDArray[np.int8], span: int, which: int) -> I64:
    """For each entry: the time of its group's latest ``which`` event strictly before it."""
    key = _packed(group, ts, span)
    excl = key[code == which]
    idx = np.searchsorted(excl, key, "left") - 1
    found = idx >= 0
    latest = np.full(key.shape, NONE, dtype=np.int64)
    cand = excl[np.maximum(idx, 0)]
    same_group = found & (cand // span == group)
    latest[same_group] = cand[same_group] % span
    return latest


def ordered_scan(
    group: I64,
    ts: I64,
    code: npt.NDArray[np.int8],
    n_groups: int,
    n_steps: int,
    window: int,
    step_windows: tuple[int, ...] | None = None,
    excluded_between: tuple[tuple[int, int], ...] = (),
    strict: bool = False,
) -> ScanResult:
    """Funnel levels per group for ordered (``strict=False``) or strict mode.

    ``ts`` must be non-negative (callers subtract the minimum). ``step_windows[j - 2]`` bounds
    the time from step ``j-1`` to step ``j``; ``excluded_between[k - 1] = (a, b)`` forbids an
    entry of code ``-k`` strictly between consecutive steps ``j-1`` and ``j`` for
    ``a < j <= b``: a chain cannot pass over it.
    """
    span = int(ts.max()) + 2 if ts.size else 2
    if n_groups * span >= 2**62:
        raise OverflowError("funnel time range times group count does not fit in 64 bits")
    key = _packed(group, ts, span)
    latest_exclusion = [
        _latest_before(group, ts, code, span, -k) for k in range(1, len(excluded_between) + 1)
    ]
    first = np.full(ts.shape, NONE, dtype=np.int64)
    is1 = code == 1
    first[is1] = ts[is1]
    for j in range(2, n_steps + 1):
        prev = np.flatnonzero((code == j - 1) & (first != NONE))
        mine = np.flatnonzero(code == j)
        if prev.size == 0 or mine.size == 0:
            break  # nobody reached step j - 1, so nobody reaches step j or later
        # Predecessors: same group, at least lo_ts, and strictly earlier (same-time step
        # j-1 entries sort just before step j ones; see the same-millisecond rule below).
        prev_key = key[prev]
        hi = np.searchsorted(prev_key, key[mine], "left")
        bounds = [(a, b) for (a, b) in excluded_between if a < j <= b]
        if step_windows is None and not bounds:
            # Only the group bounds the range: it is non-empty iff the entry just before
            # is of the same group.
            before = prev[np.maximum(hi - 1, 0)]
            lo = np.where((hi > 0) & (group[before] == group[mine]), hi - 1, hi)
        else:
            lo_ts = np.full(mine.shape, -1, dtype=np.int64)
            if step_windows is not None:
                lo_ts = np.maximum(lo_ts, ts[mine] - step_windows[j - 2])
            for (a, b), latest in zip(excluded_between, latest_exclusion, strict=True):
                if a < j <= b:
                    lo_ts = np.maximum(lo_ts, latest[mine])
            lo = np.searchsorted(prev_key, group[mine] * span + np.maximum(lo_ts, 0), "left")
        best = _last_in_range(first[prev], lo, hi)
        ok = (best != NONE) & (ts[mine] - best <= window)
        # A valid step j-1 at the same millisecond was processed just before: its chain
        # (ending at this very time) is the one step j meets, and it cannot extend it.
        same = np.minimum(hi, max(prev_key.size - 1, 0))
        if prev_key.size:  # with no step j-1 anywhere there is nothing to meet
            ok &= ~((hi < prev_key.size) & (prev_key[same] == key[mine]))
        first[mine[ok]] = best[ok]
    valid = first != NONE
    if strict:
        valid &= _before_strict_break(group, code, first, n_groups)
    return _summarize(group, ts, code, first, valid, n_groups, n_steps)


def _before_strict_break(
    group: I64, code: npt.NDArray[np.int8], first: I64, n_groups: int
) -> npt.NDArray[np.bool_]:
    """Entries ClickHouse's ``strict_order`` still looks at: those before the first entry
    that, after the group's first step 1, is another event or a step ``j >= 3`` whose step
    ``j-1`` was never reached before it. Such an entry ends the scan for that group."""
    n = code.size
    pos = np.arange(n, dtype=np.int64)
    starts, _ = _group_bounds(group, n_groups)
    first_step1 = np.full(n_groups, n, dtype=np.int64)
    step1 = np.flatnonzero(code == 1)
    np.minimum.at(first_step1, group[step1], step1)
    breaks = code <= OTHER
    # Has step j-1 been reached (validly) at any earlier entry of the group?
    for j in range(3, int(code.max(initial=0)) + 1):
        reached = ((code == j - 1) & (first != NONE)).astype(np.int64)
        before = np.cumsum(reached) - reached
        before -= before[starts][group]
        breaks |= (code == j) & (before == 0)
    breaks &= pos > first_step1[group]
    stop = np.full(n_groups, n, dtype=np.int64)
    hits = np.flatnonzero(breaks)
    np.minimum.at(stop, group[hits], hits)
    return pos < stop[group]


def _summarize(
    group: I64,
    ts: I64,
    code: npt.NDArray[np.int8],
    first: I64,
    valid: npt.NDArray[np.bool_],
    n_groups: int,
    n_steps: int,
) -> ScanResult:
    level = np.zeros(n_groups, dtype=np.int8)
    reached_at = np.full((n_steps, n_groups), NONE, dtype=np.int64)
    started_at = np.full((n_steps, n_groups), NONE, dtype=np.int64)
    for j in range(1, n_steps + 1):
        hit = np.flatnonzero(valid & (code == j))
        if hit.size == 0:
            continue
        g = group[hit]
        # Entries are sorted by group, then time: a group's first hit is its earliest.
        at = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
        uniq = g[at]
        level[uniq] = j
        reached_at[j - 1, uniq] = ts[hit[at]]
        started_at[j - 1, uniq] = first[hit[at]]
    return ScanResult(level, reached_at, started_at)


def unordered_scan(
    group: I64, ts: I64, code: npt.NDArray[np.int8], n_groups: int, n_steps: int, window: int
) -> ScanResult:
    """Unordered mode: a group reaches level ``k`` when ``k`` distinct steps occur within one
    window ``[t, t + window]`` starting at one of its step events; ``reached_at[k - 1]`` is
    the earliest time any window completes ``k`` steps, ``started_at`` that window's start."""
    span = int(ts.max()) + window + 2 if ts.size else 2
    if n_groups * span >= 2**62:
        raise OverflowError("funnel time range times group count does not fit in 64 bits")
    steps = np.flatnonzero(code >= 1)
    anchor_group, anchor_ts = group[steps], ts[steps]
    anchor_key = _packed(anchor_group, anchor_ts, span)
    # offsets[s, i]: from anchor i to the first step-s event at or after it, in the window.
    offsets = np.full((n_steps, steps.size), NONE, dtype=np.int64)
    for s in range(1, n_steps + 1):
        keys = _packed(group[code == s], ts[code == s], span)
        idx = np.searchsorted(keys, anchor_key, "left")
        cand = keys[np.minimum(idx, max(keys.size - 1, 0))] if keys.size else anchor_key
        ok = (idx < keys.size) & (cand - anchor_key <= window)
        offsets[s - 1, ok] = (cand - anchor_key)[ok]
    ranked = np.sort(np.where(offsets == NONE, np.iinfo(np.int64).max, offsets), axis=0)
    level = np.zeros(n_groups, dtype=np.int8)
    reached_at = np.full((n_steps, n_groups), NONE, dtype=np.int64)
    started_at = np.full((n_steps, n_groups), NONE, dtype=np.int64)
    for k in range(1, n_steps + 1):
        has = ranked[k - 1] != np.iinfo(np.int64).max
        if not has.any():
            continue
        g, start = anchor_group[has], anchor_ts[has]
        done = start + ranked[k - 1, has]
        # Earliest completion per group; among equal ones the latest start (shortest).
        order = np.lexsort((-start, done, g))
        uniq, at = np.unique(g[order], return_index=True)
        level[uniq] = k
        reached_at[k - 1, uniq] = done[order][at]
        started_at[k - 1, uniq] = start[order][at]
    return ScanResult(level, reached_at, started_at)
