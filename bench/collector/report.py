"""The results of all runs as a Markdown table, their medians, and the verdict on the targets.

Targets (from the issue): the collector sustains at least 40% of the bare producer's
events/s, and its p99 latency is under 50 ms when offered half its own maximum rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.collector.stats import PhaseResult, median

__all__ = ["DISTURBED_SHARE", "MIN_RATIO", "P99_LIMIT_MS", "RunResult", "render", "verdict"]

MIN_RATIO = 0.40
P99_LIMIT_MS = 50.0
#: More than this share of a core used by other processes marks a run as disturbed.
DISTURBED_SHARE = 0.15


@dataclass(frozen=True)
class RunResult:
    """One run: the baseline, the collector at full load, and at half its measured rate."""

    bare: PhaseResult
    full: PhaseResult
    half: PhaseResult
    delivered: bool

    @property
    def ratio(self) -> float:
        """Collector events/s over bare producer events/s."""
        return self.full.events_per_s / self.bare.events_per_s

    @property
    def other_cpu(self) -> float:
        """The most CPU anything else on the machine used during one of the phases."""
        return max(phase.cpu.get("other", 0.0) for phase in (self.bare, self.full, self.half))

    @property
    def errors(self) -> int:
        """Requests or sends not acknowledged, over all phases."""
        return self.bare.errors + self.full.errors + self.half.errors


_COLUMNS: list[tuple[str, Callable[[RunResult], float]]] = [
    ("bare ev/s", lambda r: r.bare.events_per_s),
    ("collector ev/s", lambda r: r.full.events_per_s),
    ("ratio", lambda r: r.ratio),
    ("full p50 ms", lambda r: r.full.p50_ms),
    ("full p99 ms", lambda r: r.full.p99_ms),
    ("half-rate ev/s", lambda r: r.half.events_per_s),
    ("half p50 ms", lambda r: r.half.p50_ms),
    ("half p99 ms", lambda r: r.half.p99_ms),
    ("errors", lambda r: r.errors),
]


def _cell(name: str, value: float) -> str:
    if name == "ratio":
        return f"{value:.2f}"
    if name == "errors" or name.endswith("ev/s"):
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _row(label: str, values: Sequence[float]) -> str:
    cells = [_cell(name, v) for (name, _), v in zip(_COLUMNS, values, strict=True)]
    return "| " + " | ".join([label, *cells]) + " |"


def _cpu_line(label: str, phases: Sequence[PhaseResult]) -> str:
    names = sorted({name for phase in phases for name in phase.cpu})
    shares = [f"{n} {median([p.cpu[n] for p in phases if n in p.cpu]):.0%}" for n in names]
    return f"CPU, {label} (share of one core, median): " + ", ".join(shares)


def verdict(runs: Sequence[RunResult]) -> tuple[bool, list[str]]:
    """Whether the medians meet both targets, with one line per target."""
    ratio = median([r.ratio for r in runs])
    p99 = median([r.half.p99_ms for r in runs])
    clean = all(r.errors == 0 and r.delivered for r in runs)
    lines = [
        f"throughput: collector/bare = {ratio:.2f} (target >= {MIN_RATIO:.2f}):"
        f" {'PASS' if ratio >= MIN_RATIO else 'FAIL'}",
        f"latency: p99 at half rate = {p99:.1f} ms (target < {P99_LIMIT_MS:g} ms):"
        f" {'PASS' if p99 < P99_LIMIT_MS else 'FAIL'}",
        "integrity: every request acknowledged and every event on Kafka:"
        f" {'PASS' if clean else 'FAIL'}",
    ]
    return ratio >= MIN_RATIO and p99 < P99_LIMIT_MS and clean, lines


def render(runs: Sequence[RunResult]) -> tuple[bool, str]:
    """The whole report, and whether every target was met."""
    per_run = [[get(r) for _, get in _COLUMNS] for r in runs]
    medians = [median([values[i] for values in per_run]) for i in range(len(_COLUMNS))]
    header = "| run | " + " | ".join(name for name, _ in _COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(_COLUMNS) + 1)]
    lines += [_row(str(i + 1), values) for i, values in enumerate(per_run)]
    lines.append(_row("**median**", medians))
    lines += [
        "",
        _cpu_line("bare producer", [r.bare for r in runs]),
        _cpu_line("collector at full load", [r.full for r in runs]),
        _cpu_line("collector at half rate", [r.half for r in runs]),
        "",
    ]
    lines += [
        f"warning: run {i + 1} was disturbed: other processes used {r.other_cpu:.0%} of a core"
        for i, r in enumerate(runs)
        if r.other_cpu > DISTURBED_SHARE
    ]
    passed, targets = verdict(runs)
    lines += targets
    lines.append(f"overall: {'PASS' if passed else 'FAIL'}")
    return passed, "\n".join(lines)
