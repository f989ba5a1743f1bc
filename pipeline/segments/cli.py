"""``autocap segment list|show|export|diff|check|preview`` and ``autocap personas``.

Segments are computed live on the read-only catalog as of ``--as-of`` (default now), from
the current ``definitions.yaml``; ``preview`` compares that with the materialized
``segment_<name>`` table, ``diff`` reads ``segment_history``. Every command takes
``--format table|csv|json``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from pipeline.definitions import Definitions, load_definitions
from pipeline.errors import ConfigError, SegmentError
from pipeline.segments import history
from pipeline.segments.engine import SegmentEngine
from pipeline.segments.personas import find_personas
from pipeline.segments.quality import QualityReport, check_segments
from pipeline.segments.spec import ACCOUNT_COLUMNS, PERSON_COLUMNS, SegmentDefinition
from pipeline.settings import Settings
from pipeline.sqlfiles import render_sql
from pipeline.timeutil import parse_ts, utc_now
from pipeline.warehouse.query import connect_readonly

__all__ = ["add_parsers", "run_personas", "run_segment"]

_KEY_COLUMNS = {
    "person": ("lifecycle", "rfm_segment", "country", "device", "email_kind"),
    "account": ("tier", "sector", "size_band", "revenue_tier", "country"),
}
_SPARK = "▁▂▃▄▅▆▇█"
_SHOWN = 20  # rows of ids a table shows; csv and json list them all


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``segment`` (with its sub-commands) and ``personas`` to the CLI."""
    shared = argparse.ArgumentParser(add_help=False, parents=[common])
    shared.add_argument("--format", choices=("table", "csv", "json"), default="table")
    shared.add_argument("--as-of", help="compute segments as of this ISO time (default now)")
    segment = sub.add_parser("segment", help="segments: list, show, export, diff, check...")
    verbs = segment.add_subparsers(dest="verb", required=True, metavar="VERB")
    verbs.add_parser("list", parents=[shared], help="the segments in definitions.yaml")
    show = verbs.add_parser("show", parents=[shared], help="size, share, distributions, trend")
    show.add_argument("name")
    export = verbs.add_parser("export", parents=[shared], help="members to CSV or Parquet")
    export.add_argument("name")
    export.add_argument("--out", type=Path, required=True, help="FILE.csv or FILE.parquet")
    export.add_argument("--columns", help="comma-separated columns or traits.<key> paths")
    export.add_argument(
        "--force", action="store_true", help="export even below AUTOCAP_SEGMENT_K_ANONYMITY"
    )
    diff = verbs.add_parser("diff", parents=[shared], help="who entered and left between dates")
    diff.add_argument("name")
    diff.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD")
    diff.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD")
    check = verbs.add_parser("check", parents=[shared], help="segment quality report")
    check.add_argument("names", nargs="*", help="segments to check (default: all)")
    check.add_argument("--convert", help="conversion event (default segment_rules.quality)")
    preview = verbs.add_parser(
        "preview", parents=[shared], help="who would enter/leave vs the materialized table"
    )
    preview.add_argument("name")
    preview.add_argument(
        "--definitions", type=Path, help="a changed definitions file to preview (default: current)"
    )
    personas = sub.add_parser("personas", parents=[shared], help="cluster people or accounts")
    personas.add_argument("--k", default="3..5", help="k or a range lo..hi (default 3..5)")
    personas.add_argument("--of", choices=("person", "account"), default="person")
    personas.add_argument("--seed", type=int, default=0, help="random seed (same seed, same)")


def _as_of(args: argparse.Namespace) -> datetime:
    if not args.as_of:
        return utc_now()
    moment = parse_ts(args.as_of)
    if moment is None:
        raise ConfigError(f"--as-of: not an ISO time: {args.as_of!r}")
    return moment


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag}: not a date (YYYY-MM-DD): {text!r}") from None


def _find(definitions: Definitions, name: str) -> SegmentDefinition:
    for segment in definitions.segments:
        if segment.name == name:
            return segment
    known = ", ".join(s.name for s in definitions.segments) or "none"
    raise SegmentError(f"unknown segment {name!r} (defined: {known})")


def _emit(fmt: str, data: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """JSON prints ``data``; CSV and table print ``rows`` under ``columns``."""
    if fmt == "json":
        sys.stdout.write(orjson.dumps(data, default=str).decode() + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        table = Table(*columns)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        Console().print(table)


def run_segment(settings: Settings, args: argparse.Namespace) -> None:
    """Run one ``autocap segment`` verb."""
    definitions = load_definitions(settings.definitions_path)
    con = connect_readonly(settings.warehouse_path)
    try:
        engine = SegmentEngine(con, definitions.segment_rules, _as_of(args))
        _VERBS[args.verb](settings, args, definitions, engine)
    finally:
        con.close()


def _list(s: Settings, args: argparse.Namespace, d: Definitions, engine: SegmentEngine) -> None:
    rows = []
    for seg in d.segments:
        try:
            size: int | None = len(history.materialized_members(engine.con, seg.name))
        except SegmentError:
            size = None  # not materialized yet
        rows.append((seg.name, seg.of, size, seg.description))
    columns = ("segment", "of", "materialized_size", "description")
    data = [dict(zip(columns, r, strict=True)) for r in rows]
    _emit(args.format, data, columns, rows)


def _bar(share: float, width: int = 20) -> str:
    return "█" * round(share * width)


def _show(s: Settings, args: argparse.Namespace, d: Definitions, engine: SegmentEngine) -> None:
    seg = _find(d, args.name)
    members = engine.members(seg)
    base = len(engine.base_ids(seg.of))
    distributions: dict[str, list[dict[str, Any]]] = {}
    for column in _KEY_COLUMNS[seg.of]:
        sql = render_sql(
            "segments/distribution",
            identifiers={"column": column, "base": f"segment_{seg.of}_base"},
        )
        rows = engine.con.execute(sql, {"ids": members, "top": 5}).fetchall()
        distributions[column] = [
            {"value": v, "members": n, "share": n / len(members)} for v, n in rows
        ]
    trend = history.sizes(engine.con, seg.name)
    data = {
        "segment": seg.name,
        "of": seg.of,
        "description": seg.description,
        "size": len(members),
        "base": base,
        "share": len(members) / base if base else 0.0,
        "as_of": engine.now.isoformat(),
        "distributions": distributions,
        "trend": [{"date": day.isoformat(), "size": n} for day, n in trend],
    }
    if args.format != "table":
        rows = [
            (column, item["value"], item["members"], round(item["share"], 4))
            for column, items in distributions.items()
            for item in items
        ]
        _emit(args.format, data, ("property", "value", "members", "share"), rows)
        return
    console = Console()
    console.print(
        f"[bold]{seg.name}[/] ({seg.of}s): {data['size']} of {base} "
        f"({data['share']:.1%}) as of {engine.now:%Y-%m-%d %H:%M} UTC"
        + (f" — {seg.description}" if seg.description else "")
    )
    table = Table("property", "value", "members", "share", "")
    for column, items in distributions.items():
        for item in items:
            share = item["share"]
            table.add_row(
                column, str(item["value"]), str(item["members"]), f"{share:.0%}", _bar(share)
            )
    console.print(table)
    if trend:
        top = max(n for _, n in trend) or 1
        spark = "".join(_SPARK[round(n / top * (len(_SPARK) - 1))] for _, n in trend[-30:])
        console.print(f"trend {trend[-30:][0][0]} → {trend[-1][0]}: {spark} (last {trend[-1][1]})")
    else:
        console.print("trend: no snapshots yet (segment_history fills as the materializer runs)")


def _export(s: Settings, args: argparse.Namespace, d: Definitions, engine: SegmentEngine) -> None:
    seg = _find(d, args.name)
    suffix = args.out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"--out: {args.out} must end in .csv or .parquet")
    members = engine.members(seg)
    floor = s.segment_k_anonymity
    if len(members) < floor and not args.force:
        raise SegmentError(
            f"segment {seg.name!r} has {len(members)} members, below the k-anonymity floor of"
            f" {floor} (AUTOCAP_SEGMENT_K_ANONYMITY): not exported (--force to export anyway)"
        )
    id_column = f"{seg.of}_id"
    columns = [c.strip() for c in (args.columns or "").split(",") if c.strip()]
    allowed = PERSON_COLUMNS if seg.of == "person" else ACCOUNT_COLUMNS
    for column in columns:
        root, _, path = column.partition(".")
        if not (column in allowed or (path and root in ("traits", "properties"))):
            raise ConfigError(f"--columns: unknown {seg.of} column {column!r}")
    rows = engine.rows(seg.of, members)
    out_rows = [{id_column: r["subject_id"], **{c: _pick(r, c) for c in columns}} for r in rows]
    table = (
        pa.Table.from_pylist(out_rows)
        if out_rows
        else pa.table({id_column: pa.array([], pa.string())})
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        pq.write_table(table, args.out)
    else:
        with args.out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=[id_column, *columns])
            writer.writeheader()
            writer.writerows(out_rows)
    summary = {"segment": seg.name, "members": len(members), "out": str(args.out)}
    _emit(args.format, summary, tuple(summary), [tuple(summary.values())])


def _pick(row: dict[str, Any], column: str) -> Any:
    root, _, path = column.partition(".")
    if not path:
        plain = row.get(column)
        return plain.isoformat() if isinstance(plain, datetime) else plain
    value: Any = orjson.loads(row[root]) if row.get(root) else None
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return (
        value
        if value is None or isinstance(value, str | int | float | bool)
        else orjson.dumps(value).decode()
    )


def _diff(s: Settings, args: argparse.Namespace, d: Definitions, engine: SegmentEngine) -> None:
    start, end = _day(args.start, "--from"), _day(args.end, "--to")
    if end < start:
        raise ConfigError("--to must not be before --from")
    from_day, before = history.members_on(engine.con, args.name, start)
    to_day, after = history.members_on(engine.con, args.name, end)
    entered, left = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    data = {
        "segment": args.name,
        "from": from_day.isoformat(),
        "to": to_day.isoformat(),
        "size_from": len(before),
        "size_to": len(after),
        "entered": entered,
        "left": left,
    }
    rows = [("entered", m) for m in entered] + [("left", m) for m in left]
    _emit(args.format, data, ("change", "subject_id"), rows)


def _check(s: Settings, args: argparse.Namespace, d: Definitions, engine: SegmentEngine) -> None:
    segments = [_find(d, n) for n in args.names] if args.names else list(d.segments)
    if not segments:
        raise SegmentError("no segments to check: define some under `segments:`")
    report = check_segments(
        engine,
        segments,
        min_size=s.segment_min_size,
        conversion_event=args.convert or d.segment_rules.conversion_event,
    )
    _print_check(report, args.format)


def _print_check(report: QualityReport, fmt: str) -> None:
    def pct(x: float | None) -> str:
        return "" if x is None else f"{x:.1%}"

    rows = [
        (
            q.name,
            q.of,
            q.size,
            pct(q.share),
            pct(q.conversion),
            "" if q.conversion_ci is None else f"{q.conversion_ci[0]:.1%}-{q.conversion_ci[1]:.1%}",
            pct(q.stability),
            "; ".join(q.verdicts) or "ok",
        )
        for q in report.segments
    ]
    columns = (
        "segment",
        "of",
        "size",
        "share",
        "conversion",
        "95% CI",
        "week stability",
        "verdict",
    )
    if fmt != "table":
        _emit(fmt, report.to_json(), columns, rows)
        return
    console = Console()
    _emit(fmt, None, columns[:-1], [row[:-1] for row in rows])
    for row in rows:
        console.print(f"{row[0]}: {row[-1]}", highlight=False)
    names = list(report.overlap)
    matrix = Table("Jaccard", *names, title="overlap")
    for a in names:
        matrix.add_row(
            a, *(f"{report.overlap[a][b]:.2f}" if b in report.overlap[a] else "" for b in names)
        )
    console.print(matrix)
    for kind, cov in report.coverage.items():
        console.print(
            f"coverage: {cov['uncovered']} of {cov['base']} {kind}s ({cov['share']:.1%}) are in"
            " none of these segments"
        )
    if report.conversion_event is None:
        console.print("distinctness: no conversion event (set segment_rules.quality or --convert)")


def _preview(s: Settings, args: argparse.Namespace, d: Definitions, engine: SegmentEngine) -> None:
    changed = load_definitions(args.definitions) if args.definitions else d
    if args.definitions:
        engine = SegmentEngine(engine.con, changed.segment_rules, engine.now)
    seg = _find(changed, args.name)
    now = set(engine.members(seg))
    try:
        saved = set(history.materialized_members(engine.con, seg.name))
    except SegmentError:
        saved = set()  # a new segment: everyone would enter
    entering, leaving = sorted(now - saved), sorted(saved - now)
    data = {
        "segment": seg.name,
        "materialized": len(saved),
        "would_be": len(now),
        "entering": entering,
        "leaving": leaving,
        "staying": len(now & saved),
    }
    rows = [("enter", m) for m in entering] + [("leave", m) for m in leaving]
    if fmt_table := args.format == "table":
        Console().print(
            f"{seg.name}: {len(saved)} now materialized → {len(now)}: "
            f"{len(entering)} would enter, {len(leaving)} would leave, {data['staying']} stay"
        )
    if not fmt_table:
        _emit(args.format, data, ("change", "subject_id"), rows)
    elif rows:
        _emit(args.format, data, ("change", "subject_id"), rows[:_SHOWN])
        if len(rows) > _SHOWN:
            Console().print(f"... and {len(rows) - _SHOWN} more (--format csv lists all)")


_VERBS: dict[str, Callable[[Settings, argparse.Namespace, Definitions, SegmentEngine], None]] = {
    "list": _list,
    "show": _show,
    "export": _export,
    "diff": _diff,
    "check": _check,
    "preview": _preview,
}


def _k_range(text: str) -> range:
    lo, sep, hi = text.partition("..")
    try:
        k_lo, k_hi = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise ConfigError(f"--k: expected N or LO..HI, got {text!r}") from None
    if not 2 <= k_lo <= k_hi <= 20:
        raise ConfigError(f"--k: need 2 <= lo <= hi <= 20, got {text!r}")
    return range(k_lo, k_hi + 1)


def run_personas(settings: Settings, args: argparse.Namespace) -> None:
    """``autocap personas``: cluster, pick k, describe."""
    k_range = _k_range(args.k)
    definitions = load_definitions(settings.definitions_path)
    con = connect_readonly(settings.warehouse_path)
    try:
        engine = SegmentEngine(con, definitions.segment_rules, _as_of(args))
        result = find_personas(engine, args.of, k_range, seed=args.seed)
    finally:
        con.close()
    rows = [
        (
            p.index,
            len(p.members),
            f"{p.share:.1%}",
            "; ".join(f"{t['feature']} {t['value']:g} vs {t['overall']:g}" for t in p.traits),
        )
        for p in result.personas
    ]
    columns = ("persona", "size", "share", "distinguished by (mean here vs everyone)")
    if args.format == "table":
        scores = ", ".join(f"k={k}: {v:.3f}" for k, v in result.silhouettes.items())
        Console().print(
            f"{result.k} personas of {args.of}s (silhouette {scores}; seed {args.seed})"
        )
    _emit(args.format, result.to_json(), columns, rows)
