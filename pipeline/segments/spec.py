"""Segments declared under ``segments:`` in ``definitions.yaml``: parsed and validated.

```yaml
segments:
  - name: enterprise_evaluators     # lower case, digits, _: the table segment_<name>
    of: person                      # person (default) | account
    description: people at big accounts comparing plans
    where:
      all:                          # all | any: a list; not: one condition
        - {property: country, in: [DE, FR]}              # built-in column of the base
        - {property: traits.plan, eq: pro}               # traits.<path> / properties.<path>
        - {performed: Viewed Pricing, at_least: 2, within: 30d}   # raw or defined event
        - {cohort: power_users}                          # a cohort_membership row
        - {account: {property: employees, gte: 1000}}    # people: their account's condition
        - not: {property: email_kind, eq: consumer}
  - name: committee_in_motion
    of: account
    where:
      all:
        - {users: {performed: "*", within: 7d}, at_least: 3}      # accounts: member count
        - {users: {property: traits.title, eq: Director}}
```

Operators are those of ``pipeline.properties`` (``eq ne gt gte lt lte in exists``) plus
``contains`` (a list column or JSON array holds the value). Every ``ConfigError`` names the
segment and the key. The conditions are compiled to SQL with bound values by
``pipeline.segments.compile``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pipeline.errors import ConfigError
from pipeline.properties import parse_duration
from pipeline.sqlfiles import IDENTIFIER

__all__ = [
    "ACCOUNT_COLUMNS",
    "KINDS",
    "OPERATORS",
    "PERSON_COLUMNS",
    "AccountWhere",
    "AllOf",
    "AnyOf",
    "Condition",
    "InCohort",
    "Not",
    "Performed",
    "PropertyTest",
    "SegmentDefinition",
    "UsersWhere",
    "cohorts_used",
    "parse_condition",
    "parse_segments",
]

KINDS = ("person", "account")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists", "contains")

#: Columns of the person base (``sql/segments/person_base.sql``) a condition may name.
PERSON_COLUMNS = frozenset(
    {
        "person_id",
        "account_id",
        "first_seen",
        "last_seen",
        "event_count",
        "session_count",
        "initial_referrer",
        "initial_utm_source",
        "browser",
        "os",
        "device",
        "country",
        "email_domain",
        "email_kind",
        "role",
        "title",
        "purchases",
        "revenue",
        "last_purchase",
        "recency_days",
        "r_score",
        "f_score",
        "m_score",
        "rfm_segment",
        "lifecycle",
    }
)

#: Columns of the account base (``sql/segments/account_base.sql``) a condition may name.
ACCOUNT_COLUMNS = frozenset(
    {
        "account_id",
        "name",
        "industry",
        "sector",
        "employees",
        "employee_band",
        "size_band",
        "annual_revenue",
        "revenue_band",
        "revenue_tier",
        "country",
        "region",
        "sic_code",
        "naics_code",
        "technologies",
        "member_browsers",
        "member_os",
        "members",
        "active_users_7d",
        "active_users_30d",
        "titles",
        "roles",
        "roles_engaged",
        "committee_coverage",
        "lead_score",
        "last_activity",
        "business_users",
        "consumer_users",
        "fit",
        "engaged",
        "tier",
    }
)

_JSON_ROOTS = ("traits", "properties")
_PATH_STEP = re.compile(r"^[A-Za-z0-9_\-$ ]{1,64}$")


@dataclass(frozen=True)
class PropertyTest:
    """``<property> <op> <value>``: a column of the base or a path into its JSON."""

    name: str
    op: str
    value: Any


@dataclass(frozen=True)
class Performed:
    """Did the event (raw or defined; ``None``: any event) between ``at_least`` and
    ``at_most`` times within the last ``within`` (``None``: ever)."""

    event: str | None
    at_least: int = 1
    at_most: int | None = None
    within: timedelta | None = None


@dataclass(frozen=True)
class InCohort:
    """A member of the cohort (``cohort_membership``) for the segment's subject kind."""

    cohort: str


@dataclass(frozen=True)
class AccountWhere:
    """A person whose account meets ``condition`` (an account condition)."""

    condition: Condition


@dataclass(frozen=True)
class UsersWhere:
    """An account with at least ``at_least`` members meeting ``condition`` (a person
    condition)."""

    condition: Condition
    at_least: int = 1


@dataclass(frozen=True)
class AllOf:
    """Every part holds."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one part holds."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """The part does not hold."""

    part: Condition


Condition = PropertyTest | Performed | InCohort | AccountWhere | UsersWhere | AllOf | AnyOf | Not


@dataclass(frozen=True)
class SegmentDefinition:
    """One segment: who it is over (``person`` or ``account``) and its condition."""

    name: str
    of: str
    where: Condition
    description: str = ""

    @property
    def table(self) -> str:
        """The published table holding its current members."""
        return f"segment_{self.name}"


def _property(item: dict[str, Any], kind: str, where: str) -> PropertyTest:
    name = item["property"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: `property` must be a column or traits./properties. path")
    root, _, path = name.partition(".")
    if path:
        allowed_roots = _JSON_ROOTS if kind == "person" else ("traits",)
        if root not in allowed_roots or not all(_PATH_STEP.match(s) for s in path.split(".")):
            raise ConfigError(
                f"{where}: property {name!r}: paths go into {' or '.join(allowed_roots)}"
                " (e.g. traits.plan)"
            )
    else:
        columns = PERSON_COLUMNS if kind == "person" else ACCOUNT_COLUMNS
        if name not in columns:
            raise ConfigError(
                f"{where}: unknown {kind} property {name!r} (a column: "
                f"{', '.join(sorted(columns))}; or traits.<key>)"
            )
    ops = [k for k in item if k != "property"]
    if len(ops) != 1 or ops[0] not in OPERATORS:
        raise ConfigError(
            f"{where}: property {name!r} needs exactly one operator of {', '.join(OPERATORS)}"
        )
    op = ops[0]
    value = item[op]
    if op == "in" and (not isinstance(value, list) or not value):
        raise ConfigError(f"{where}: property {name!r}: `in` needs a non-empty list")
    if op == "exists" and not isinstance(value, bool):
        raise ConfigError(f"{where}: property {name!r}: `exists` takes true or false")
    if op not in ("in", "exists") and not isinstance(value, str | int | float | bool):
        raise ConfigError(f"{where}: property {name!r}: `{op}` needs a string or number")
    if op == "in" and not all(isinstance(v, str | int | float) for v in value):
        raise ConfigError(f"{where}: property {name!r}: `in` takes strings or numbers")
    return PropertyTest(name, op, value)


def _count(item: dict[str, Any], key: str, where: str, default: int | None) -> int | None:
    value = item.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: `{key}` must be a whole number, 0 or more")
    return value


def _performed(item: dict[str, Any], where: str) -> Performed:
    unknown = sorted(set(item) - {"performed", "at_least", "at_most", "within"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (performed, at_least, ...)")
    event = item["performed"]
    if not isinstance(event, str) or not event:
        raise ConfigError(f'{where}: `performed` needs an event name (or "*" for any)')
    # "at_most: 0" alone means never: the lower bound is then 0, not 1.
    at_least = _count(item, "at_least", where, 0 if "at_most" in item else 1) or 0
    at_most = _count(item, "at_most", where, None)
    if at_most is not None and at_most < at_least:
        raise ConfigError(f"{where}: `at_most` ({at_most}) is below `at_least` ({at_least})")
    within = parse_duration(item["within"], "within", where) if item.get("within") else None
    return Performed(None if event == "*" else event, at_least, at_most, within)


def parse_condition(item: object, kind: str, where: str) -> Condition:
    """One condition (possibly nested) of a segment over ``kind``."""
    if not isinstance(item, dict) or not item:
        raise ConfigError(f"{where}: a condition is a mapping (property, performed, all...)")
    if "property" in item:
        return _property(item, kind, where)
    if "performed" in item:
        return _performed(item, where)
    if set(item) == {"cohort"}:
        if not isinstance(item["cohort"], str) or not item["cohort"]:
            raise ConfigError(f"{where}: `cohort` needs a cohort name")
        return InCohort(item["cohort"])
    if set(item) == {"account"}:
        if kind != "person":
            raise ConfigError(f"{where}: `account` conditions are for segments of people")
        return AccountWhere(parse_condition(item["account"], "account", f"{where} account"))
    if "users" in item and set(item) <= {"users", "at_least"}:
        if kind != "account":
            raise ConfigError(f"{where}: `users` conditions are for segments of accounts")
        inner = parse_condition(item["users"], "person", f"{where} users")
        return UsersWhere(inner, _count(item, "at_least", where, 1) or 1)
    if len(item) == 1 and next(iter(item)) in ("all", "any"):
        key = next(iter(item))
        parts = item[key]
        if not isinstance(parts, list) or not parts:
            raise ConfigError(f"{where}: `{key}` needs a non-empty list of conditions")
        parsed = tuple(parse_condition(p, kind, f"{where} {key}[{i}]") for i, p in enumerate(parts))
        return AllOf(parsed) if key == "all" else AnyOf(parsed)
    if set(item) == {"not"}:
        return Not(parse_condition(item["not"], kind, f"{where} not"))
    raise ConfigError(
        f"{where}: unknown condition keys {sorted(map(str, item))} (use property, performed,"
        " cohort, account, users, all, any or not)"
    )


def _segment(item: object, where: str) -> SegmentDefinition:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ConfigError(f"{where}: each segment needs a name")
    name = item["name"]
    where = f"{where} {name!r}"
    if not IDENTIFIER.fullmatch(name):
        raise ConfigError(
            f"{where}: a segment name names the table segment_<name>: use lower-case letters,"
            " digits and _"
        )
    if name == "history":
        raise ConfigError(f"{where}: `history` is taken (segment_history is the daily snapshots)")
    unknown = sorted(set(item) - {"name", "of", "where", "description"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (use of, where, description)")
    of = item.get("of", "person")
    if of not in KINDS:
        raise ConfigError(f"{where}: `of` must be person or account, got {of!r}")
    if "where" not in item:
        raise ConfigError(f"{where}: needs a `where` condition")
    description = item.get("description") or ""
    if not isinstance(description, str):
        raise ConfigError(f"{where}: `description` must be text")
    return SegmentDefinition(name, of, parse_condition(item["where"], of, where), description)


def parse_segments(items: object, where: str) -> tuple[SegmentDefinition, ...]:
    """Validate the ``segments:`` list; every ``ConfigError`` names the segment and key."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ConfigError(f"{where}: `segments` must be a list")
    out = [_segment(item, f"{where}: segment") for item in items]
    names = [s.name for s in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{where}: segment {twice[0]!r} is defined twice")
    return tuple(out)


def cohorts_used(cond: Condition) -> list[str]:
    """Names of the cohorts a condition refers to, anywhere in it."""
    if isinstance(cond, InCohort):
        return [cond.cohort]
    if isinstance(cond, AllOf | AnyOf):
        return [c for part in cond.parts for c in cohorts_used(part)]
    if isinstance(cond, Not):
        return cohorts_used(cond.part)
    if isinstance(cond, AccountWhere | UsersWhere):
        return cohorts_used(cond.condition)
    return []
