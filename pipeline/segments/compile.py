"""Segment conditions compiled to one SQL query with bound values.

Every value from ``definitions.yaml`` (event names, cohort names, property values, JSON
paths) becomes a bound parameter; column names come only from the allow-lists in
``pipeline.segments.spec``; the shapes come from ``sql/segments/*.sql``. So no text an
analyst typed is ever part of the SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.segments.spec import (
    AccountWhere,
    AllOf,
    AnyOf,
    Condition,
    InCohort,
    Not,
    Performed,
    PropertyTest,
    SegmentDefinition,
    UsersWhere,
)
from pipeline.sqlfiles import load_sql, render_sql, sql_identifier

__all__ = ["CompiledQuery", "compile_segment"]

_PARAM = re.compile(r"\$([a-z_]+)")
_COMMENT = re.compile(r"--[^\n]*")
_LIST_COLUMNS = frozenset(
    {"technologies", "member_browsers", "member_os", "titles", "roles", "account_ids"}
)
_TIME_COLUMNS = frozenset({"first_seen", "last_seen", "last_purchase", "last_activity"})
_COMPARE = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_LIMIT = 2**62


@dataclass
class CompiledQuery:
    """SQL text and the values bound to its ``$name`` parameters."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


class _Compiler:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.params: dict[str, Any] = {}

    def bind(self, sql: str, values: dict[str, Any]) -> str:
        """Give each ``$name`` of a fragment a name unique in the whole query."""

        def rename(match: re.Match[str]) -> str:
            unique = f"p{len(self.params)}_{match.group(1)}"
            self.params[unique] = values[match.group(1)]
            return "$" + unique

        # Comments mention parameters too; only the statement's own may be renamed.
        return _PARAM.sub(rename, _COMMENT.sub("", sql))

    def value(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "$" + name

    def condition(self, cond: Condition, kind: str) -> str:
        if isinstance(cond, AllOf | AnyOf):
            joiner = " AND " if isinstance(cond, AllOf) else " OR "
            return "(" + joiner.join(self.condition(p, kind) for p in cond.parts) + ")"
        if isinstance(cond, Not):
            return f"(NOT coalesce({self.condition(cond.part, kind)}, false))"
        if isinstance(cond, PropertyTest):
            return self.property(cond)
        if isinstance(cond, Performed):
            return self.performed(cond, kind)
        if isinstance(cond, InCohort):
            sub = self.bind(load_sql("segments/cohort"), {"cohort": cond.cohort, "kind": kind})
            return f"(b.subject_id IN ({sub}))"
        if isinstance(cond, AccountWhere):
            inner = self.condition(cond.condition, "account")
            sub = load_sql("segments/account_of").replace("/*condition*/", inner)
            return f"(b.account_id IN ({sub}))"
        assert isinstance(cond, UsersWhere)
        inner = self.condition(cond.condition, "person")
        sub = self.bind(load_sql("segments/users"), {"at_least": cond.at_least})
        return f"(b.subject_id IN ({sub.replace('/*condition*/', inner)}))"

    def performed(self, cond: Performed, kind: str) -> str:
        subject = "person_id" if kind == "person" else "account_id"
        since = self.now - cond.within if cond.within is not None else _EPOCH
        sql = render_sql("segments/performed", identifiers={"subject": subject})
        values: dict[str, Any] = {"event": cond.event, "since": since, "now": self.now}
        if cond.at_least == 0:  # "at most N times" includes never: the complement of > N
            if cond.at_most is None:
                return "true"
            values |= {"at_least": cond.at_most + 1, "at_most": _NO_LIMIT}
            return f"(b.subject_id NOT IN ({self.bind(sql, values)}))"
        at_most = _NO_LIMIT if cond.at_most is None else cond.at_most
        values |= {"at_least": cond.at_least, "at_most": at_most}
        return f"(b.subject_id IN ({self.bind(sql, values)}))"

    def property(self, cond: PropertyTest) -> str:
        root, _, path = cond.name.partition(".")
        is_list = False
        if path:
            steps = "".join(f'."{step}"' for step in path.split("."))
            suffix = "[*]" if cond.op == "contains" else ""
            is_list = cond.op == "contains"
            expr = (
                f"json_extract_string(b.{sql_identifier(root)}, {self.value('$' + steps + suffix)})"
            )
        else:
            expr = f"b.{sql_identifier(cond.name)}"
            is_list = cond.name in _LIST_COLUMNS
        op, wanted = cond.op, cond.value
        if op == "exists":
            return f"({expr} IS {'NOT ' if wanted else ''}NULL)"
        if op == "contains":
            needle = self.value(str(wanted))
            if is_list:
                return f"coalesce(list_contains({expr}, CAST({needle} AS VARCHAR)), false)"
            return f"coalesce(contains(CAST({expr} AS VARCHAR), {needle}), false)"
        if op == "in":
            if all(isinstance(v, int | float) for v in wanted):
                numbers = self.value([float(v) for v in wanted])
                return f"list_contains({numbers}, TRY_CAST({expr} AS DOUBLE))"
            texts = self.value([str(v) for v in wanted])
            return f"list_contains({texts}, CAST({expr} AS VARCHAR))"
        left, right = self.typed(expr, cond.name, wanted)
        if op == "ne":
            return f"({left} IS DISTINCT FROM {right})"
        return f"({left} {_COMPARE[op]} {right})"

    def typed(self, expr: str, name: str, wanted: Any) -> tuple[str, str]:
        """Both sides of a comparison in one type, chosen by the wanted value's type."""
        if isinstance(wanted, bool):
            return f"TRY_CAST({expr} AS BOOLEAN)", self.value(wanted)
        if isinstance(wanted, int | float):
            return f"TRY_CAST({expr} AS DOUBLE)", self.value(float(wanted))
        if name in _TIME_COLUMNS:
            return expr, f"CAST({self.value(str(wanted))} AS TIMESTAMPTZ)"
        return f"CAST({expr} AS VARCHAR)", self.value(str(wanted))


def compile_segment(segment: SegmentDefinition, now: datetime) -> CompiledQuery:
    """The query listing ``segment``'s members (``subject_id``) as of ``now``, over the temp
    tables ``SegmentEngine.prepare`` made."""
    compiler = _Compiler(now)
    condition = compiler.condition(segment.where, segment.of)
    base = f"segment_{segment.of}_base"
    sql = render_sql("segments/members", identifiers={"base": base})
    return CompiledQuery(sql.replace("/*condition*/", condition), compiler.params)
