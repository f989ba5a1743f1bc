"""Custom person properties declared under ``properties:`` in ``definitions.yaml``.

```yaml
properties:
  - name: first_plan              # lower case, digits and _
    kind: first                   # first | last: a field's value at the first/last event
    field: properties.plan        # dotted path into the event
    event: Upgraded               # optional: event names or defined-event names (a list ok)
  - name: pricing_views_7d
    kind: count                   # count | sum (sum needs a numeric `field`)
    event: Viewed Pricing
    window: 7d                    # optional rolling window, as of the person's last event
  - name: lead_score
    kind: score                   # sum of weights, halved every `half_life`
    half_life: 14d
    weights: {Viewed Pricing: 5, Signed Up: 20}
  - name: tier
    kind: case                    # first case whose conditions all hold, else `else`
    cases:
      - when: {lead_score: {gte: 50}, first_plan: {eq: pro}}
        then: hot
    else: cold
```

A ``case`` reads properties declared above it, built-ins (``event_count``, ``country``...)
and traits, by name; operators are ``eq ne gt gte lt lte in exists``. No expression is ever
evaluated as code. The rules themselves are folded in ``pipeline.profiles``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pipeline.errors import ConfigError, FunnelError
from pipeline.sqlfiles import IDENTIFIER
from pipeline.warehouse.funnel_spec import parse_duration_ms

__all__ = [
    "KINDS",
    "Condition",
    "PropertyDefinition",
    "condition_holds",
    "event_matches",
    "field_value",
    "parse_condition",
    "parse_duration",
    "parse_properties",
]

KINDS = ("first", "last", "count", "sum", "score", "case")
_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists")
_KEYS = {
    "first": {"field", "event"},
    "last": {"field", "event"},
    "count": {"event", "window"},
    "sum": {"field", "event", "window"},
    "score": {"half_life", "weights"},
    "case": {"cases", "else"},
}


@dataclass(frozen=True)
class Condition:
    """``<name> <op> <value>``: one test of a ``case``."""

    name: str
    op: str
    value: Any


@dataclass(frozen=True)
class PropertyDefinition:
    """One custom property; which fields matter depends on ``kind``."""

    name: str
    kind: str
    events: tuple[str, ...] = ()
    field: tuple[str, ...] = ()
    window: timedelta | None = None
    half_life: timedelta | None = None
    weights: tuple[tuple[str, float], ...] = ()
    cases: tuple[tuple[tuple[Condition, ...], Any], ...] = ()
    default: Any = None


def event_matches(names: tuple[str, ...], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is one of ``names`` (its own name or a defined event it is);
    no names means every event."""
    if not names:
        return True
    if event.get("event") in names:
        return True
    return any(name in names for name in event.get("defined_events") or ())


def field_value(event: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a dotted path of ``event``, or None where any step is missing."""
    value: Any = event
    for step in path:
        # dict, not Mapping: events are decoded JSON, and the ABC check is slow per event.
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def condition_holds(condition: Condition, value: Any) -> bool:
    """Whether ``value`` passes ``condition``; comparing unlike types is simply false."""
    op, wanted = condition.op, condition.value
    if op == "exists":
        return (value is not None) == bool(wanted)
    if op == "eq":
        return bool(value == wanted)
    if op == "ne":
        return bool(value != wanted)
    if op == "in":
        return value in wanted
    if value is None or isinstance(value, bool) != isinstance(wanted, bool):
        return False
    try:
        if op == "gt":
            return bool(value > wanted)
        if op == "gte":
            return bool(value >= wanted)
        if op == "lt":
            return bool(value < wanted)
        return bool(value <= wanted)
    except TypeError:
        return False


def parse_duration(value: Any, what: str, where: str) -> timedelta:
    """``30d``, ``12h``... in ``definitions.yaml`` as a timedelta; a ``ConfigError`` naming
    ``where`` and ``what`` otherwise."""
    try:
        return timedelta(milliseconds=parse_duration_ms(str(value), what))
    except FunnelError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _names(value: Any, where: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value or ())
    if not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{where}: `event` must be an event name or a list of names")
    return names


def _conditions(
    when: Any, declared: set[str], later: set[str], where: str
) -> tuple[Condition, ...]:
    if not isinstance(when, dict) or not when:
        raise ConfigError(f"{where}: each case needs `when: {{property: {{op: value}}}}`")
    out = []
    for name, test in when.items():
        condition = parse_condition(name, test, where)
        if name in later and name not in declared:
            # Properties are computed in order: a case sees only those above it.
            raise ConfigError(f"{where}: `{name}` is declared below this case; move it above")
        out.append(condition)
    return tuple(out)


def parse_condition(name: object, test: object, where: str) -> Condition:
    """``name: {op: value}`` (a ``case`` test, a cohort's ``property`` criterion)."""
    if not isinstance(test, dict) or len(test) != 1:
        raise ConfigError(f"{where}: `{name}` needs exactly one test, e.g. {{gte: 10}}")
    op, value = next(iter(test.items()))
    if op not in _OPERATORS:
        raise ConfigError(
            f"{where}: unknown operator {op!r} for `{name}` (use {', '.join(_OPERATORS)})"
        )
    if op == "in" and not isinstance(value, list):
        raise ConfigError(f"{where}: `in` for `{name}` needs a list of values")
    return Condition(str(name), op, value)


def _property(item: object, where: str, declared: set[str], later: set[str]) -> PropertyDefinition:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ConfigError(f"{where}: each property needs a name")
    name = item["name"]
    where = f"{where} {name!r}"
    if not IDENTIFIER.fullmatch(name):
        raise ConfigError(f"{where}: a property name must be lower-case letters, digits and _")
    kind = item.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: `kind` must be one of {', '.join(KINDS)}")
    unknown = sorted(set(item) - {"name", "kind"} - _KEYS[kind])
    if unknown:
        allowed = ", ".join(sorted(_KEYS[kind]))
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} for kind {kind} (use {allowed})")
    events = _names(item.get("event"), where)
    field: tuple[str, ...] = ()
    if kind in ("first", "last", "sum"):
        if not isinstance(item.get("field"), str) or not item["field"]:
            raise ConfigError(f"{where}: kind {kind} needs a `field`, e.g. properties.plan")
        field = tuple(item["field"].split("."))
    window = parse_duration(item["window"], "window", where) if item.get("window") else None
    if kind == "score":
        if "half_life" not in item:
            raise ConfigError(f"{where}: kind score needs a `half_life`, e.g. 14d")
        weights = item.get("weights")
        if not isinstance(weights, dict) or not weights:
            raise ConfigError(f"{where}: kind score needs `weights: {{event name: number}}`")
        for event, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise ConfigError(f"{where}: weight of {event!r} must be a number")
        return PropertyDefinition(
            name,
            kind,
            half_life=parse_duration(item["half_life"], "half_life", where),
            weights=tuple((str(e), float(w)) for e, w in weights.items()),
        )
    if kind == "case":
        cases = item.get("cases")
        if not isinstance(cases, list) or not cases:
            raise ConfigError(f"{where}: kind case needs a list of `cases`")
        parsed = []
        for case in cases:
            if not isinstance(case, dict) or set(case) != {"when", "then"}:
                raise ConfigError(f"{where}: each case is `{{when: ..., then: value}}`")
            parsed.append((_conditions(case["when"], declared, later, where), case["then"]))
        return PropertyDefinition(name, kind, cases=tuple(parsed), default=item.get("else"))
    return PropertyDefinition(name, kind, events=events, field=field, window=window)


def parse_properties(items: object, where: str) -> tuple[PropertyDefinition, ...]:
    """Validate the ``properties:`` list; every ``ConfigError`` names the entry."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ConfigError(f"{where}: `properties` must be a list")
    declared: set[str] = set()
    everyone = {str(i.get("name")) for i in items if isinstance(i, dict)}
    out = []
    for item in items:
        definition = _property(item, f"{where}: property", declared, everyone)
        if definition.name in declared:
            raise ConfigError(f"{where}: property {definition.name!r} is defined twice")
        declared.add(definition.name)
        out.append(definition)
    return tuple(out)
