"""The report's segment section: segment sizes and overlaps, account tiers and personas,
computed by the same engine as ``autocap segment`` and ``autocap personas``."""

from __future__ import annotations

from datetime import datetime

import duckdb

from pipeline.definitions import Definitions
from pipeline.errors import QueryError, SegmentError
from pipeline.report import charts
from pipeline.report.charts import Chart, Table
from pipeline.segments.compile import compile_segment
from pipeline.segments.engine import SegmentEngine
from pipeline.segments.personas import find_personas
from pipeline.segments.quality import jaccard
from pipeline.sqlfiles import load_sql

__all__ = ["segment_charts"]

#: Persona counts tried, as `autocap personas --k 3..5`.
PERSONA_K = range(3, 6)


def segment_charts(
    con: duckdb.DuckDBPyConnection, definitions: Definitions, now: datetime
) -> list[Chart]:
    """Sizes and overlaps of the declared segments, account tiers and person personas."""
    engine = SegmentEngine(con, definitions.segment_rules, now)
    try:
        engine.prepare()
    except SegmentError as exc:
        raise QueryError(str(exc)) from None
    out = _sizes_and_overlaps(engine, definitions)
    out.append(_tiers(engine))
    out.append(_personas(engine))
    return out


def _sizes_and_overlaps(engine: SegmentEngine, definitions: Definitions) -> list[Chart]:
    members: dict[str, set[str]] = {}
    kinds: dict[str, str] = {}
    rows: list[tuple[object, ...]] = []
    sqls: list[str] = []
    notes: list[str] = []
    bases = {kind: len(engine.base_ids(kind)) for kind in ("person", "account")}
    for segment in definitions.segments:
        try:
            found = set(engine.members(segment))
        except SegmentError as exc:
            notes.append(f"{segment.name}: not computed ({exc})")
            continue
        members[segment.name], kinds[segment.name] = found, segment.of
        base = bases[segment.of]
        rows.append(
            (segment.name, segment.of, len(found), round(len(found) / base, 4) if base else 0)
        )
        sqls.append(
            f"-- autocap segment show {segment.name}\n{compile_segment(segment, engine.now).sql}"
        )
    sizes = Chart(
        "segment_sizes",
        "Segment sizes",
        "Members of each segment of definitions.yaml (people or accounts), as `autocap segment"
        " show` counts them now; share is of all people or all accounts.",
        "\n\n".join(sqls) or "-- no segments in definitions.yaml",
        charts.bar(
            Table(["segment", "of", "members", "share"], rows),
            "segment",
            ["members"],
            horizontal=True,
        ),
        Table(["segment", "of", "members", "share"], rows),
        notes,
    )
    names = list(members)
    cells = [
        (a, b, round(jaccard(members[a], members[b]), 4))
        for a in names
        for b in names
        if kinds[a] == kinds[b]
    ]
    overlap = Chart(
        "segment_overlap",
        "Segment overlap (Jaccard)",
        "Shared members over members of either, for each pair of segments of the same kind:"
        " 1 on the diagonal; near 1 elsewhere means two segments are the same audience"
        " (`autocap segment check` gives verdicts).",
        "-- autocap segment check --format json  (the overlap matrix)",
        charts.overlap(names, cells),
        Table(["segment", "other", "jaccard"], cells),
    )
    return [sizes, overlap]


def _tiers(engine: SegmentEngine) -> Chart:
    sql = load_sql("report/account_tiers")
    try:
        cursor = engine.con.execute(sql)
    except duckdb.Error as exc:
        raise QueryError(f"sql/report/account_tiers.sql: {str(exc).splitlines()[0]}") from None
    table = Table([d[0] for d in cursor.description or []], cursor.fetchall())
    return Chart(
        "account_tiers",
        "Account tiers (fit x engagement)",
        "A: fit (size and sector) and engaged (active users and lead score), B: one of the two,"
        " C: neither; thresholds in definitions.yaml `segment_rules`.",
        sql,
        charts.pivot_bar(table, "tier", "size_band", "accounts"),
        table,
    )


def _personas(engine: SegmentEngine) -> Chart:
    notes: list[str] = []
    rows: list[tuple[object, ...]] = []
    try:
        result = find_personas(engine, "person", PERSONA_K, seed=0)
    except SegmentError as exc:
        notes.append(f"No personas: {exc}")
    else:
        for persona in result.personas:
            traits = ", ".join(
                f"{t['feature']} {t['value']:g} (all: {t['overall']:g})" for t in persona.traits
            )
            rows.append(
                (f"persona {persona.index}", len(persona.members), round(persona.share, 4), traits)
            )
        notes.append(
            f"k = {result.k} chosen by silhouette over {PERSONA_K.start}..{PERSONA_K.stop - 1}"
            f" (seed {result.seed})."
        )
    table = Table(["persona", "people", "share", "distinguished_by"], rows)
    return Chart(
        "personas",
        "Personas",
        "People clustered on behaviour and profile (k-means), each described by the features"
        " most over-represented in it.",
        f"-- autocap personas --k {PERSONA_K.start}..{PERSONA_K.stop - 1} --seed 0 --format json",
        charts.bar(table, "persona", ["people"]),
        table,
        notes,
    )
