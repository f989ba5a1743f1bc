"""Stream benchmark, stage 2: profiles and accounts for one worker against the bare
pass-through, side by side in the same run (``python -m bench.stream.stage2``).

Each run starts a fresh embedded broker and preloads ``enriched`` with what stage 1 makes of
``bench.stream.traffic``'s realistic records (every seventh event of an identified person
turned into a ``group`` call of one of 40 accounts, so account roll-ups work too). Then, one
after the other over the same records:

1. the baseline, ``bench.stream.bare``: a bare aiokafka consumer group member that sends
   every ``enriched`` record unchanged to a topic of its own;
2. stage 2, ``python -m pipeline worker`` with ``STAGE2_DEFINITIONS`` (20 custom properties
   of every kind and 20 cohorts of every criterion): profiles and cohort states folded and
   sent to ``profiles`` (cohort changes to ``cohort_changes``), account updates to
   ``account_updates`` and accounts to ``accounts``. Measured on ``profiles``: one profile
   per event that changed its person.

Rates come from the output records' own timestamps, as in ``bench.stream.run``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.collector.profile import hotspots, py_spy
from bench.collector.stack import bench_settings
from bench.stream.run import _START, Phase, _measure, _preload, _process
from bench.stream.traffic import stage1_outputs
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import TOPICS, ensure_topics
from pipeline.processes import free_port

__all__ = ["STAGE2_DEFINITIONS", "main"]

_BARE_TOPIC = "passthrough2"
_TARGET = 0.25
_ACCOUNTS = 40

#: 20 custom properties and 20 cohorts (16 of persons, 4 of accounts) over the bench
#: traffic's events and fields.
STAGE2_DEFINITIONS = """
events:
  - name: Viewed Pricing
    match: {event: $pageview, url: "*/pricing*"}
  - name: Viewed Docs
    match: {event: $pageview, url: "*/docs*"}
properties:
  - {name: pageviews, kind: count, event: $pageview}
  - {name: clicks, kind: count, event: $click}
  - {name: changes, kind: count, event: $change}
  - {name: submits, kind: count, event: $submit}
  - {name: pricing_views, kind: count, event: Viewed Pricing}
  - {name: pageviews_7d, kind: count, event: $pageview, window: 7d}
  - {name: clicks_30d, kind: count, event: $click, window: 30d}
  - {name: pricing_views_14d, kind: count, event: Viewed Pricing, window: 14d}
  - {name: width_sum, kind: sum, field: properties.$viewport_width}
  - {name: docs_width_30d, kind: sum, event: Viewed Docs, field: properties.$viewport_width,
     window: 30d}
  - {name: first_path, kind: first, field: context.page.path}
  - {name: last_path, kind: last, field: context.page.path}
  - {name: first_referrer, kind: first, field: context.page.referrer}
  - {name: last_title, kind: last, field: context.page.title, event: $pageview}
  - {name: first_locale, kind: first, field: context.locale}
  - name: lead_score
    kind: score
    half_life: 14d
    weights: {Viewed Pricing: 10, $submit: 5, Viewed Docs: 2}
  - name: engagement
    kind: score
    half_life: 3d
    weights: {$click: 1, $change: 1, $pageview: 0.5}
  - name: tier
    kind: case
    cases:
      - when: {lead_score: {gte: 30}}
        then: hot
      - when: {lead_score: {gte: 10}}
        then: warm
    else: cold
  - name: docs_reader
    kind: case
    cases:
      - when: {docs_width_30d: {gt: 0}}
        then: true
    else: false
  - name: power_user
    kind: case
    cases:
      - when: {clicks_30d: {gte: 20}, engagement: {gte: 5}}
        then: true
    else: false
cohorts:
  - {name: c_clickers, where: {performed: {event: $click, at_least: 3, within: 7d}}}
  - {name: c_browsers, where: {performed: {event: $pageview, at_least: 5, within: 1d}}}
  - {name: c_one_page, where: {performed: {event: $pageview, exactly: 1, within: 30d}}}
  - {name: c_quiet, where: {performed: {event: $click, at_most: 1, within: 7d}}}
  - {name: c_no_submit, where: {not_performed: {event: $submit, within: 30d}}}
  - {name: c_new_pricing, where: {first_performed: {event: Viewed Pricing, within: 7d}}}
  - {name: c_new_docs, where: {first_performed: {event: Viewed Docs, within: 14d}}}
  - {name: c_docs_stopped, where: {stopped: {event: Viewed Docs, window: 7d}}}
  - {name: c_clicks_stopped, where: {stopped: {event: $click, window: 3d}}}
  - {name: c_pricing_back, where: {restarted: {event: Viewed Pricing, window: 7d}}}
  - name: c_docs_then_pricing
    where: {sequence: {steps: [Viewed Docs, Viewed Pricing], within: 1d}}
  - {name: c_click_then_submit, where: {sequence: {steps: [$click, $submit], within: 1h}}}
  - {name: c_weekly, where: {regularly: {event: $pageview, at_least: 1, every: 7d, periods: 4}}}
  - {name: c_daily_clicker, where: {regularly: {event: $click, at_least: 2, every: 1d, periods: 3}}}
  - name: c_engaged_evaluators
    where:
      all:
        - {property: {engagement: {gte: 5}}}
        - {performed: {event: Viewed Pricing, at_least: 2, within: 14d}}
  - name: c_power_or_pricing
    where:
      any:
        - {property: {pageviews: {gte: 20}}}
        - all:
            - {performed: {event: $submit, within: 7d}}
            - {not_performed: {event: Viewed Docs, within: 7d}}
  - name: a_builders
    of: account
    where: {users_performed: {event: $click, at_least_users: 2, within: 14d}}
  - {name: a_active_share, of: account, where: {users_active_share: {at_least: 0.4, within: 7d}}}
  - name: a_pricing
    of: account
    where: {users_performed: {event: Viewed Pricing, at_least_users: 1, within: 30d}}
  - name: a_any
    of: account
    where:
      any:
        - {users_performed: {event: $submit, at_least_users: 1, within: 7d}}
        - {users_active_share: {at_least: 0.8, within: 1d}}
"""


def enriched_records(count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """Stage 1's output for the bench traffic, keyed by person, some events group calls."""
    out = []
    for n, value in enumerate(stage1_outputs(count, seed=seed, start=_START)["events"]):
        record = orjson.loads(value)
        person = str(record["person_id"])
        if person.startswith("u:") and n % 7 == 0:
            account = f"acct-{zlib.crc32(person.encode()) % _ACCOUNTS:02d}"
            traits = {"name": account, "industry": "Software", "employees": 10 + n % 900}
            record |= {"type": "group", "account_id": account, "traits": traits}
        out.append((person.encode(), orjson.dumps(record)))
    return out


@dataclass(frozen=True)
class Run:
    """Both sides of one run, over the same records."""

    bare: Phase
    stage2: Phase


def run_once(index: int, args: argparse.Namespace, workdir: Path) -> Run:
    """One run on a fresh broker: the bare pass-through, then stage 2."""
    with EmbeddedBroker(log_path=workdir / "tansu.log") as broker:
        settings = bench_settings(broker.bootstrap, workdir / "data", args.partitions, "warning")
        definitions = workdir / "definitions.yaml"
        definitions.write_text(STAGE2_DEFINITIONS)
        settings = settings.with_overrides(
            worker_metrics_port=free_port(),
            session_timer_s=3600.0,
            consumer_session_timeout_s=6.0,
            definitions_path=definitions,
        )
        settings.data_dir.mkdir(parents=True)
        ensure_topics(settings, broker.bootstrap, names=(*TOPICS, _BARE_TOPIC))
        records = enriched_records(args.events, seed=index)
        asyncio.run(_preload(broker.bootstrap, settings.topic("enriched"), records))
        bare_cmd = [
            sys.executable,
            "-m",
            "bench.stream.bare",
            f"--bootstrap={broker.bootstrap}",
            f"--source={settings.topic('enriched')}",
            f"--sink={settings.topic(_BARE_TOPIC)}",
            f"--count={len(records)}",
            f"--group={settings.topic_prefix}-bare",
        ]
        bare_log = workdir / "bare.log"
        with _process(bare_cmd, settings, bare_log) as proc:
            bare = _measure(
                proc, broker.bootstrap, settings.topic(_BARE_TOPIC), len(records), bare_log
            )
        worker_log = workdir / "worker.log"
        with _process([sys.executable, "-m", "pipeline", "worker"], settings, worker_log) as proc:
            profiling = (
                py_spy(proc.pid, args.profile)
                if args.profile and index == 0
                else contextlib.nullcontext()
            )
            with profiling:
                stage2 = _measure(
                    proc, broker.bootstrap, settings.topic("profiles"), len(records), worker_log
                )
    return Run(bare, stage2)


def _report(runs: Sequence[Run], events: int) -> tuple[bool, str]:
    lines = [
        "events/s (CPU µs per event)",
        f"{'run':>4} {'bare':>16} {'stage 2':>16} {'stage2/bare':>12}",
    ]

    def cell(phase: Phase) -> str:
        return f"{phase.per_s:,.0f} ({phase.cpu_s / events * 1e6:.0f})"

    for n, run in enumerate(runs, 1):
        ratio = run.stage2.per_s / run.bare.per_s
        lines.append(f"{n:>4} {cell(run.bare):>16} {cell(run.stage2):>16} {ratio:>12.2f}")
    ratio = statistics.median(r.stage2.per_s / r.bare.per_s for r in runs)
    passed = ratio >= _TARGET
    lines.append(
        f"median: stage 2 / bare {ratio:.2f} (target ≥ {_TARGET:.2f}):"
        f" {'PASS' if passed else 'FAIL'}; stage 2"
        f" {statistics.median(r.stage2.per_s for r in runs):,.0f} ev/s, bare"
        f" {statistics.median(r.bare.per_s for r in runs):,.0f} ev/s"
    )
    return passed, "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stream.stage2",
        description="Stage 2 events/s for one worker against a bare aiokafka pass-through.",
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--events", type=int, default=20_000, help="enriched records per run")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the worker in run 1; raw stacks to this file"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; exit 0 only when the target is met."""
    args = _parser().parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    runs = []
    for index in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="autocap-bench-stage2-") as tmp:
            run = run_once(index, args, Path(tmp))
        runs.append(run)
        print(
            f"run {index + 1}/{args.runs}: bare {run.bare.per_s:,.0f} ev/s,"
            f" stage 2 {run.stage2.per_s:,.0f} ev/s",
            flush=True,
        )
    passed, report = _report(runs, args.events)
    print()
    print(report)
    if args.profile:
        print(f"\nworker in run 1, py-spy ({args.profile}; run 1 ran under it):")
        print(hotspots(args.profile))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
