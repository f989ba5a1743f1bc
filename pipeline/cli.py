"""The ``autocap`` command: builds the settings once, runs one command, maps errors to exits.

Any ``AutocapError`` becomes one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from rich.console import Console

from pipeline import __version__
from pipeline.errors import AutocapError, ConfigError, VerifyMismatch
from pipeline.settings import Settings, load_settings, setting_docs

if TYPE_CHECKING:
    import duckdb

_Result = TypeVar("_Result")

__all__ = ["main"]

_COMMON_FLAGS = (
    ("--data-dir", "data_dir", "where the lake, warehouse and logs live"),
    ("--kafka-bootstrap", "kafka_bootstrap", "Kafka bootstrap servers (host:port,...)"),
    ("--topic-prefix", "topic_prefix", "topic name prefix"),
    ("--log-level", "log_level", "debug, info, warning or error"),
)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="autocap.toml to read (default ./autocap.toml)")
    for flag, dest, text in _COMMON_FLAGS:
        common.add_argument(flag, dest=dest, help=text)

    parser = argparse.ArgumentParser(prog="autocap", description="Heap-style product analytics.")
    parser.add_argument("--version", action="version", version=f"autocap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", parents=[common], help="run the whole pipeline on this machine")
    up.add_argument("--demo", action="store_true", help="also drive simulated B2B/B2C traffic")
    up.add_argument("--rate", type=float, default=5.0, help="demo events per second")
    up.add_argument(
        "--days", type=int, default=0, help="with --demo: first import N days of demo history"
    )

    broker = sub.add_parser("broker", parents=[common], help="run the embedded Kafka broker")
    broker.add_argument("--port", dest="broker_port", help="listen port (default: a free one)")
    broker.add_argument("--host", dest="broker_host", help="listen address")

    collector = sub.add_parser("collector", parents=[common], help="run the HTTP collector")
    collector.add_argument("--port", dest="collector_port", help="listen port")
    collector.add_argument("--host", dest="collector_host", help="listen address")

    sub.add_parser("worker", parents=[common], help="run the stream worker (Faust)")
    sub.add_parser("sink", parents=[common], help="run the Parquet sink")
    materialize = sub.add_parser(
        "materialize", parents=[common], help="keep defined-event tags and funnel tables fresh"
    )
    materialize.add_argument("--once", action="store_true", help="one run, then exit")
    materialize.add_argument("--full", action="store_true", help="re-tag all history (with --once)")
    sub.add_parser(
        "health", parents=[common], help="export consumer lag and freshness for Prometheus"
    )

    simulate = sub.add_parser(
        "simulate", parents=[common], help="post simulated traffic to the collector"
    )
    simulate.add_argument("--rate", type=float, default=5.0, help="events per second")
    simulate.add_argument("--seed", type=int, help="random seed for repeatable traffic")
    simulate.add_argument(
        "--days", type=int, default=0, help="first import N days of history (autocap import)"
    )
    simulate.add_argument(
        "--visits-per-day", type=int, default=60, help="history visits per day (with --days)"
    )
    simulate.add_argument(
        "--history-only", action="store_true", help="import the --days history, then exit"
    )
    sub.add_parser(
        "demo-site", parents=[common], help="serve the demo website on AUTOCAP_DEMO_PORT"
    )

    report = sub.add_parser(
        "report", parents=[common], help="write a self-contained HTML report of the warehouse"
    )
    report.add_argument("--out", type=Path, default=Path("report.html"), help="file to write")
    report.add_argument(
        "--weeks", type=int, default=8, help="weeks of history in the retention heatmap"
    )

    query = sub.add_parser("query", parents=[common], help="run SQL on the warehouse")
    query.add_argument("sql", help="the SQL to run (read-only)")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")

    funnel = sub.add_parser("funnel", parents=[common], help="count a funnel on the warehouse")
    funnel.add_argument("--steps", required=True, help="step names, comma-separated: A,B,C")
    funnel.add_argument("--window", required=True, help="conversion window: 30m, 1d, 7d...")
    funnel.add_argument("--step-windows", help="per-step windows from the previous step: 1h,1d")
    funnel.add_argument("--mode", default="ordered", help="ordered, strict or unordered")
    funnel.add_argument("--by", default="person", help="who converts: person or account")
    funnel.add_argument(
        "--exclude", action="append", help="EVENT or EVENT:A-B (between steps A and B)"
    )
    funnel.add_argument(
        "--breakdown",
        help="properties.KEY, context.KEY.KEY, traits.KEY, a column, person.COLUMN, "
        "person.traits.KEY, account.COLUMN or account.traits.KEY",
    )
    funnel.add_argument("--since", help="only events at or after this ISO time")
    funnel.add_argument("--until", help="only events before this ISO time (also the as-of time)")
    funnel.add_argument("--trend", help="conversion per day or week of the first step")
    funnel.add_argument("--format", choices=("table", "csv", "json"), default="table")

    retention = sub.add_parser(
        "retention", parents=[common], help="retention of people by first-event cohort"
    )
    retention.add_argument("--start-event", required=True, help="event that starts a cohort")
    retention.add_argument("--return-event", required=True, help="event that counts as a return")
    retention.add_argument("--period", default="day", help="day or week (UTC, weeks from Monday)")
    retention.add_argument("--periods", default="7", help="periods after the first: 1..366")
    retention.add_argument(
        "--unbounded", action="store_true", help="retained in k = returned in k or later"
    )
    retention.add_argument("--since", help="only cohorts whose first start is at/after this")
    retention.add_argument("--until", help="only events before this ISO time (also the as-of)")
    retention.add_argument("--format", choices=("table", "csv", "json"), default="table")

    paths = sub.add_parser("paths", parents=[common], help="top paths after or before an event")
    paths.add_argument("--from", dest="event", required=True, help="the event paths start at")
    paths.add_argument("--direction", default="next", help="next (after it) or previous")
    paths.add_argument("--steps", default="1", help="events per path: 1..10")
    paths.add_argument("--top", default="10", help="how many paths to show: 1..1000")
    paths.add_argument("--per", default="session", help="paths stay in one session or person")
    paths.add_argument("--since", help="only events at or after this ISO time")
    paths.add_argument("--until", help="only events before this ISO time")
    paths.add_argument("--format", choices=("table", "csv", "json"), default="table")

    from pipeline.segments.cli import add_parsers as add_segment_parsers

    add_segment_parsers(sub, common)
    cohort = sub.add_parser("cohort", help="behavioural cohorts and members")
    cohort_sub = cohort.add_subparsers(dest="cohort_command", required=True, metavar="ACTION")
    cohort_list = cohort_sub.add_parser(
        "list", parents=[common], help="defined cohorts with member counts"
    )
    cohort_members = cohort_sub.add_parser(
        "members", parents=[common], help="a cohort's current members"
    )
    cohort_members.add_argument("name", help="the cohort")
    cohort_why = cohort_sub.add_parser(
        "why", parents=[common], help="why a person or account is (not) in a cohort"
    )
    cohort_why.add_argument("name", help="the cohort")
    cohort_why.add_argument("subject", help="person_id or account_id")
    for action in (cohort_list, cohort_members, cohort_why):
        action.add_argument("--format", choices=("table", "csv", "json"), default="table")

    status = sub.add_parser(
        "status", parents=[common], help="throughput, lag, freshness and firing alerts"
    )
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.add_argument(
        "--interval",
        type=float,
        default=2.0,
        help="seconds between the two scrapes rates are taken from (without Prometheus)",
    )
    status.add_argument("--prometheus-url", dest="prometheus_url", help="Prometheus server URL")

    imports = sub.add_parser(
        "import", parents=[common], help="backfill Segment-spec JSONL or Parquet history"
    )
    imports.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files to import")
    imports.add_argument(
        "--format", dest="input_format", default="auto", help="jsonl, parquet or auto"
    )
    imports.add_argument("--write-key", help="the source's write key (kept on dead letters)")
    imports.add_argument("--output", choices=("table", "json"), default="table", help="summary as")

    verify = sub.add_parser(
        "verify",
        parents=[common],
        help="recompute stages 1 and 2 in batch and compare with the stream",
    )
    verify.add_argument("--format", choices=("table", "json"), default="table")
    verify.add_argument(
        "--strict",
        action="store_true",
        help="also fail on differences explained by events that arrived out of order",
    )

    seed = sub.add_parser(
        "backfill-state",
        parents=[common],
        help="compute custom properties over the lake's history and seed the stream with them",
    )
    seed.add_argument(
        "properties", nargs="*", metavar="PROPERTY", help="properties to seed (default: all)"
    )
    seed.add_argument("--format", choices=("table", "json"), default="table")
    forget = sub.add_parser(
        "forget",
        parents=[common],
        help="remove a person (person_id, user_id or anonymous_id) from lake, warehouse and "
        "changelogs, and drop their new events",
    )
    forget.add_argument("id", help="a person_id, user_id or anonymous_id")
    forget.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds between purge passes (events in flight land meanwhile)",
    )
    forget.add_argument("--format", choices=("table", "json"), default="table")

    sub.add_parser("config", parents=[common], help="print the effective settings")
    sub.add_parser("openapi", help="print the collector's OpenAPI document (JSON)")
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = {dest for _, dest, _ in _COMMON_FLAGS} | {
        "broker_port",
        "broker_host",
        "collector_port",
        "collector_host",
        "prometheus_url",
    }
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def _cmd_up(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.up import run_up

    if args.days < 0:
        raise ConfigError(f"--days: must be 0 or more, got {args.days}")
    if args.days and not args.demo:
        raise ConfigError("--days goes with --demo (it imports demo history)")
    run_up(settings, demo=args.demo, demo_rate=args.rate, demo_days=args.days)


def _cmd_simulate(settings: Settings, args: argparse.Namespace) -> None:
    import signal
    import threading

    from pipeline.backfill.command import render_summary
    from pipeline.demo.traffic import backfill, run_traffic

    if args.days < 0 or args.visits_per_day < 1:
        raise ConfigError("--days must be 0 or more and --visits-per-day 1 or more")
    if args.history_only and not args.days:
        raise ConfigError("--history-only needs --days N")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.days:
        summary = backfill(settings, args.days, args.seed, args.visits_per_day)
        render_summary(summary, Console(stderr=True))
        if args.history_only:
            return
    if not settings.write_keys:
        raise ConfigError("no write keys: set AUTOCAP_WRITE_KEYS so the simulator can post")
    run_traffic(settings, args.rate, stop, seed=args.seed)


def _cmd_demo_site(settings: Settings, args: argparse.Namespace) -> None:
    import signal
    import threading

    from pipeline.demo.site import serve_site
    from pipeline.processes import ensure_port_free

    ensure_port_free(
        settings.collector_host, settings.demo_port, "the demo site", "AUTOCAP_DEMO_PORT"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve_site(settings, stop)


def _cmd_report(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.report.build import write_report

    if args.weeks < 1:
        raise ConfigError(f"--weeks: must be 1 or more, got {args.weeks}")
    path = write_report(settings, args.out, weeks=args.weeks)
    Console(stderr=True).print(f"autocap: report written to {path}", highlight=False)


def _cmd_materialize(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.roles import run_materializer

    if args.full and not args.once:
        raise ConfigError("--full goes with --once (a running materializer re-tags on its own)")
    run_materializer(settings, once=args.once, full=args.full)


def _cmd_query(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.output import print_result
    from pipeline.warehouse.query import run_query

    print_result(run_query(settings.warehouse_path, args.sql), args.format)


def _on_warehouse(
    settings: Settings, run: Callable[[duckdb.DuckDBPyConnection], _Result]
) -> _Result:
    """``run`` on a read-only connection to the analysts' catalog, closed afterwards."""
    from pipeline.warehouse.query import connect_readonly

    con = connect_readonly(settings.warehouse_path)
    try:
        return run(con)
    finally:
        con.close()


def _cmd_funnel(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.output import print_funnel
    from pipeline.warehouse.funnel import run_funnel
    from pipeline.warehouse.funnel_spec import FunnelSpec

    keys = ("steps", "window", "step_windows", "mode", "by", "exclude", "breakdown")
    spec = FunnelSpec.from_mapping(
        {k: getattr(args, k) for k in (*keys, "since", "until", "trend")}
    )
    print_funnel(_on_warehouse(settings, lambda con: run_funnel(con, spec)), args.format)


def _cmd_retention(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.output import print_retention
    from pipeline.warehouse.retention import RetentionSpec, run_retention

    keys = ("start_event", "return_event", "period", "periods", "unbounded", "since", "until")
    spec = RetentionSpec.from_mapping({k: getattr(args, k) for k in keys})
    print_retention(_on_warehouse(settings, lambda con: run_retention(con, spec)), args.format)


def _cmd_paths(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.output import print_paths
    from pipeline.warehouse.paths import PathsSpec, run_paths

    keys = ("event", "direction", "steps", "top", "per", "since", "until")
    spec = PathsSpec.from_mapping({k: getattr(args, k) for k in keys})
    print_paths(_on_warehouse(settings, lambda con: run_paths(con, spec)), args.format)


def _cmd_segment(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.segments.cli import run_personas, run_segment

    (run_segment if args.command == "segment" else run_personas)(settings, args)


def _cmd_cohort(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.definitions import load_definitions
    from pipeline.output import print_result
    from pipeline.timeutil import utc_now
    from pipeline.warehouse import cohort_views

    definitions = load_definitions(settings.definitions_path)
    if args.cohort_command == "list":
        result = _on_warehouse(settings, lambda con: cohort_views.list_cohorts(con, definitions))
    elif args.cohort_command == "members":
        result = _on_warehouse(
            settings, lambda con: cohort_views.cohort_members(con, definitions, args.name)
        )
    else:
        result = _on_warehouse(
            settings,
            lambda con: cohort_views.explain_member(
                con, definitions, args.name, args.subject, utc_now()
            ),
        )
    print_result(result, args.format)


def _cmd_status(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.status import from_prometheus, from_scrapes, render

    if args.interval <= 0:
        raise ConfigError(f"--interval: must be above 0, got {args.interval}")
    if settings.prometheus_url:
        status = from_prometheus(settings)
    else:
        status = from_scrapes(settings, interval_s=args.interval)
    if args.format == "json":
        sys.stdout.write(status.to_json().decode() + "\n")
    else:
        Console().print(render(status))


def _cmd_import(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.backfill.command import render_summary, run_import

    summary = run_import(settings, args.files, args.input_format, args.write_key)
    if args.output == "json":
        sys.stdout.write(orjson.dumps(summary.to_json()).decode() + "\n")
    else:
        render_summary(summary, Console())


def _cmd_verify(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.batch.verify import verify_warehouse
    from pipeline.batch.verify_report import print_report

    report = verify_warehouse(settings)
    print_report(report, args.format, strict=args.strict)
    if report.failed(strict=args.strict):
        raise VerifyMismatch(report.verdict(strict=args.strict))


def _cmd_backfill_state(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.batch.seed_state import run_backfill_state

    summary = run_backfill_state(settings, args.properties)
    if args.format == "json":
        sys.stdout.write(orjson.dumps(summary.to_json()).decode() + "\n")
        return
    names = ", ".join([*summary.properties, *(f"cohort {c}" for c in summary.cohorts)]) or "none"
    print(
        f"seeded {names} for {summary.persons:,} persons from {summary.events:,} lake events"
        f" (seed {summary.seed_id}); the worker applies them in order with live events"
    )


def _cmd_forget(settings: Settings, args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from rich.table import Table

    from pipeline.forget.command import forget

    if not args.settle > 0:
        raise ConfigError(f"--settle: must be above 0, got {args.settle}")
    report = forget(settings, args.id, settle_s=args.settle)
    if args.format == "json":
        sys.stdout.write(orjson.dumps(asdict(report)).decode() + "\n")
        return
    table = Table("forgotten", "value")
    for name, value in asdict(report).items():
        table.add_row(name, str(value))
    Console().print(table)


def _cmd_config(settings: Settings, args: argparse.Namespace) -> None:
    from rich.table import Table

    table = Table("setting", "env var", "value", "from")
    for name, env, _default, _doc in setting_docs():
        value = getattr(settings, name)
        shown = ",".join(k.key[:6] + "..." for k in value) if name == "write_keys" else value
        table.add_row(
            name,
            env,
            "(unset)" if value in (None, ()) else str(shown),
            settings.sources.get(name, "default"),
        )
    Console().print(table)


def _cmd_openapi(settings: Settings, args: argparse.Namespace) -> None:
    import orjson

    from collectors.http.openapi import build_openapi

    sys.stdout.write(orjson.dumps(build_openapi(), option=orjson.OPT_INDENT_2).decode() + "\n")


def _role(name: str) -> Callable[[Settings, argparse.Namespace], None]:
    def run(settings: Settings, args: argparse.Namespace) -> None:
        from pipeline import roles

        getattr(roles, name)(settings)

    return run


_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], None]] = {
    "up": _cmd_up,
    "broker": _role("run_broker"),
    "collector": _role("run_collector_role"),
    "worker": _role("run_worker_role"),
    "sink": _role("run_sink"),
    "materialize": _cmd_materialize,
    "health": _role("run_health"),
    "simulate": _cmd_simulate,
    "demo-site": _cmd_demo_site,
    "report": _cmd_report,
    "query": _cmd_query,
    "funnel": _cmd_funnel,
    "retention": _cmd_retention,
    "paths": _cmd_paths,
    "segment": _cmd_segment,
    "personas": _cmd_segment,
    "cohort": _cmd_cohort,
    "status": _cmd_status,
    "import": _cmd_import,
    "verify": _cmd_verify,
    "backfill-state": _cmd_backfill_state,
    "forget": _cmd_forget,
    "config": _cmd_config,
    "openapi": _cmd_openapi,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autocap`` console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    err = Console(stderr=True, highlight=False)
    try:
        settings = load_settings(_flags(args), config_path=getattr(args, "config", None))
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        for chatty in ("kafka", "aiokafka"):  # connection chatter at INFO drowns our own logs
            logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
        _COMMANDS[args.command](settings, args)
    except AutocapError as exc:
        err.print(f"autocap: error: {exc}", markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
