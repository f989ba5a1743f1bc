"""Segment members on a warehouse connection: the bases built once, each segment one query.

``SegmentEngine(con, rules, now).prepare()`` makes temp tables (``segment_person_base``,
``segment_account_base``, ``segment_industry_codes``) on the connection, so the analysts'
read-only catalog works: temp tables live in memory, not in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from pipeline.errors import SegmentError
from pipeline.segments.compile import compile_segment
from pipeline.segments.industry import industry_codes
from pipeline.segments.rules import SegmentRules, band_labels
from pipeline.segments.spec import SegmentDefinition, cohorts_used
from pipeline.sqlfiles import load_sql, render_sql

__all__ = ["SegmentEngine"]


@dataclass
class SegmentEngine:
    """Computes segments over ``con`` (a connection to the catalog) as of ``now``."""

    con: duckdb.DuckDBPyConnection
    rules: SegmentRules
    now: datetime
    _prepared: bool = field(default=False, init=False)

    def prepare(self) -> SegmentEngine:
        """Build the person and account bases (once)."""
        if self._prepared:
            return self
        try:
            self._build_bases()
        except duckdb.Error as exc:
            raise SegmentError(f"segment bases could not be built: {exc}") from None
        self._prepared = True
        return self

    def _build_bases(self) -> None:
        r, now = self.rules, self.now
        self.con.register("codes", industry_codes())
        self.con.execute(load_sql("segments/industry_codes"))
        self.con.unregister("codes")
        self.con.execute(
            load_sql("segments/person_base"),
            {
                "now": now,
                "rfm_event": r.rfm_event,
                "rfm_amount_path": "$." + ".".join(f'"{s}"' for s in r.rfm_amount[1:]),
                "rfm_since": now - r.rfm_window
                if r.rfm_window
                else datetime.min.replace(tzinfo=now.tzinfo),
                "new_since": now - r.lifecycle_new,
                "active_since": now - r.lifecycle_active,
                "dormant_since": now - r.lifecycle_dormant,
                "dormant_s": r.lifecycle_dormant.total_seconds(),
            },
        )
        self.con.execute(
            load_sql("segments/account_base"),
            {
                "employee_edges": list(r.employee_bands),
                "employee_labels": band_labels(r.employee_bands),
                "revenue_edges": list(r.revenue_bands),
                "revenue_labels": band_labels(r.revenue_bands),
                "committee_since": now - r.committee_window,
                "committee_roles": list(r.committee_roles),
                "fit_min_employees": r.fit_min_employees,
                "fit_sectors": list(r.fit_sectors),
                "engaged_min_active": r.engaged_min_active_users_30d,
                "engaged_min_lead": r.engaged_min_lead_score,
            },
        )

    def has_view(self, name: str) -> bool:
        """Whether the catalog has a table or view called ``name``."""
        ((found,),) = self.con.execute(load_sql("segments/has_view"), {"name": name}).fetchall()
        return bool(found)

    def members(self, segment: SegmentDefinition) -> list[str]:
        """The segment's members (person or account ids), sorted."""
        cohorts = cohorts_used(segment.where)
        if cohorts and not self.has_view("cohort_membership"):
            raise SegmentError(
                f"segment {segment.name!r} uses cohort {cohorts[0]!r}, but the warehouse has"
                " no cohort_membership view (cohorts are not materialized there yet)"
            )
        self.prepare()
        query = compile_segment(segment, self.now)
        try:
            rows = self.con.execute(query.sql, query.params).fetchall()
        except duckdb.Error as exc:
            raise SegmentError(f"segment {segment.name!r} could not be computed: {exc}") from None
        return [str(row[0]) for row in rows]

    def base_ids(self, kind: str) -> list[str]:
        """Every person (or account) a segment of ``kind`` could contain."""
        self.prepare()
        sql = render_sql("segments/base_ids", identifiers={"base": f"segment_{kind}_base"})
        return [str(r[0]) for r in self.con.execute(sql).fetchall()]

    def rows(self, kind: str, ids: list[str]) -> list[dict[str, Any]]:
        """Every column of the base for the given subjects, in id order."""
        self.prepare()
        sql = render_sql("segments/base_rows", identifiers={"base": f"segment_{kind}_base"})
        cursor = self.con.execute(sql, {"ids": ids})
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
