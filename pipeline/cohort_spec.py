"""Behavioural cohorts declared under ``cohorts:`` in ``definitions.yaml``: parsing only.

```yaml
cohorts:
  - name: engaged_trialists       # lower-case letters, digits and _
    of: person                    # person (default) | account
    where:                        # one criterion, or all:/any: lists nested freely
      all:
        - property: {plan: {eq: trial}}      # profile property, built-in or trait
        - performed: {event: Created Dashboard, at_least: 2, within: 7d}
        - not_performed: {event: Upgraded, within: 30d}
        - first_performed: {event: Signed Up, within: 14d}
        - stopped: {event: Read Docs, window: 14d}
        - restarted: {event: Read Docs, window: 14d}
        - sequence: {steps: [Viewed Pricing, Requested Demo], within: 3d}
        - regularly: {event: Created Dashboard, at_least: 1, every: 7d, periods: 4}
  - name: active_accounts
    of: account
    where:
      any:
        - users_performed: {event: Created Dashboard, at_least_users: 3, within: 14d}
        - users_active_share: {at_least: 0.4, within: 7d}
        - property: {employee_band: {in: ["201-1000", "1001-5000"]}}
```

``performed`` takes one of ``at_least`` / ``at_most`` / ``exactly`` (default ``at_least:
1``). ``property`` uses the operators of ``properties:`` cases (``eq ne gt gte lt lte in
exists``). Events are event names or defined-event names. Person cohorts take every
criterion but the ``users_*`` ones; account cohorts take ``property`` and the ``users_*``
quantifiers. What each criterion means in time is in ``pipeline.cohorts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pipeline.errors import ConfigError
from pipeline.properties import Condition, parse_condition, parse_duration
from pipeline.sqlfiles import IDENTIFIER

__all__ = ["Cohort", "Criterion", "parse_cohorts"]

SUBJECTS = ("person", "account")
#: Criterion kind -> (allowed keys, required keys).
_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "performed": ({"event", "at_least", "at_most", "exactly", "within"}, {"event", "within"}),
    "not_performed": ({"event", "within"}, {"event", "within"}),
    "first_performed": ({"event", "within"}, {"event", "within"}),
    "stopped": ({"event", "window"}, {"event", "window"}),
    "restarted": ({"event", "window"}, {"event", "window"}),
    "sequence": ({"steps", "within"}, {"steps", "within"}),
    "regularly": ({"event", "at_least", "every", "periods"}, {"event", "every", "periods"}),
    "users_performed": ({"event", "at_least_users", "within"}, {"event", "within"}),
    "users_active_share": ({"at_least", "within"}, {"at_least", "within"}),
}
_FOR = {
    "person": {"property", *_KEYS} - {"users_performed", "users_active_share"},
    "account": {"property", "users_performed", "users_active_share"},
}


@dataclass(frozen=True)
class Criterion:
    """One node of a cohort's ``where``: a leaf test or an ``all``/``any`` of children.

    Which fields matter depends on ``kind``: ``events`` (one name, or a sequence's steps),
    ``op``/``count`` (the threshold), ``within`` (the window, also ``stopped``'s window and
    ``regularly``'s period), ``periods``, ``conditions`` (``property``), ``children``.
    """

    kind: str
    text: str
    events: tuple[str, ...] = ()
    op: str = "at_least"
    count: float = 1
    within: timedelta = timedelta(0)
    periods: int = 0
    conditions: tuple[Condition, ...] = ()
    children: tuple[Criterion, ...] = ()

    def leaves(self) -> list[Criterion]:
        """Every leaf below (or this one)."""
        if self.children:
            return [leaf for child in self.children for leaf in child.leaves()]
        return [self]


@dataclass(frozen=True)
class Cohort:
    """A named cohort of persons or accounts."""

    name: str
    of: str
    where: Criterion


def _duration(item: dict[str, Any], key: str, where: str) -> tuple[timedelta, str]:
    # The text too: criteria are described as written ("within 7d").
    return parse_duration(item[key], key, where), str(item[key])


def _count(item: dict[str, Any], key: str, where: str, share: bool = False) -> float:
    value = item[key]
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    if share:
        ok = ok and 0 < value <= 1
    elif ok and not isinstance(value, int):
        ok = False
    if not ok:
        wanted = "a share between 0 and 1, e.g. 0.4" if share else "a whole number >= 0"
        raise ConfigError(f"{where}: `{key}` must be {wanted}, got {value!r}")
    return float(value)


def _event(item: dict[str, Any], where: str) -> str:
    if not isinstance(item.get("event"), str) or not item["event"]:
        raise ConfigError(f"{where}: `event` must be an event name")
    return str(item["event"])


def _property(body: Any, where: str) -> Criterion:
    if not isinstance(body, dict) or not body:
        raise ConfigError(f"{where}: `property` needs {{name: {{op: value}}}}")
    conditions = [parse_condition(name, test, where) for name, test in body.items()]
    text = " and ".join(f"{c.name} {c.op} {c.value!r}" for c in conditions)
    return Criterion("property", text, conditions=tuple(conditions))


def _leaf(kind: str, body: Any, where: str) -> Criterion:
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: `{kind}` needs a mapping of its keys")
    allowed, required = _KEYS[kind]
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} in `{kind}` (use {', '.join(sorted(allowed))})"
        )
    missing = sorted(required - set(body))
    if missing:
        raise ConfigError(f"{where}: `{kind}` needs `{missing[0]}`")
    if kind == "sequence":
        steps = body["steps"]
        if not isinstance(steps, list) or len(steps) < 2:
            raise ConfigError(f"{where}: `sequence` needs `steps`: a list of 2 or more events")
        if not all(isinstance(s, str) and s for s in steps):
            raise ConfigError(f"{where}: each `sequence` step must be an event name")
        within, w = _duration(body, "within", where)
        text = f"performed {' then '.join(steps)} within the last {w}"
        return Criterion(kind, text, tuple(steps), within=within)
    if kind == "users_active_share":
        share = _count(body, "at_least", where, share=True)
        within, w = _duration(body, "within", where)
        text = f"at least {share:.0%} of the account's users active within {w}"
        return Criterion(kind, text, count=share, within=within)
    event = _event(body, where)
    if kind == "performed":
        ops = [op for op in ("at_least", "at_most", "exactly") if op in body]
        if len(ops) > 1:
            raise ConfigError(f"{where}: `performed` takes one of at_least, at_most, exactly")
        op = ops[0] if ops else "at_least"
        count = _count(body, op, where) if ops else 1.0
        within, w = _duration(body, "within", where)
        text = f"performed {event} {op.replace('_', ' ')} {count:g} times within {w}"
        return Criterion(kind, text, (event,), op, count, within)
    if kind == "regularly":
        count = _count(body, "at_least", where) if "at_least" in body else 1.0
        every, e = _duration(body, "every", where)
        periods = int(_count(body, "periods", where))
        if periods < 1:
            raise ConfigError(f"{where}: `periods` must be at least 1")
        text = f"performed {event} at least {count:g} times in each of the last {periods} x {e}"
        return Criterion(kind, text, (event,), count=count, within=every, periods=periods)
    if kind == "users_performed":
        count = _count(body, "at_least_users", where) if "at_least_users" in body else 1.0
        within, w = _duration(body, "within", where)
        text = f"at least {count:g} users performed {event} within {w}"
        return Criterion(kind, text, (event,), count=count, within=within)
    key = "window" if kind in ("stopped", "restarted") else "within"
    within, w = _duration(body, key, where)
    texts = {
        "not_performed": f"did not perform {event} within {w}",
        "first_performed": f"first performed {event} within {w}",
        "stopped": f"stopped performing {event} (in the {w} before the last {w}, not since)",
        "restarted": f"restarted performing {event} (in the last {w}, not the {w} before, but"
        " earlier)",
    }
    return Criterion(kind, texts[kind], (event,), within=within)


def _criterion(node: Any, of: str, where: str) -> Criterion:
    if not isinstance(node, dict) or len(node) != 1:
        raise ConfigError(
            f"{where}: each criterion is one key (all, any, property, performed, ...), got {node!r}"
        )
    kind, body = next(iter(node.items()))
    if kind in ("all", "any"):
        if not isinstance(body, list) or not body:
            raise ConfigError(f"{where}: `{kind}` needs a list of criteria")
        children = tuple(_criterion(child, of, where) for child in body)
        joiner = " and " if kind == "all" else " or "
        text = "(" + joiner.join(c.text for c in children) + ")"
        return Criterion(kind, text, children=children)
    if kind not in _FOR["person"] | _FOR["account"]:
        known = ", ".join(sorted(_FOR["person"] | _FOR["account"]))
        raise ConfigError(f"{where}: unknown criterion {kind!r} (use all, any, {known})")
    if kind not in _FOR[of]:
        allowed = ", ".join(sorted(_FOR[of]))
        raise ConfigError(f"{where}: criterion `{kind}` is not for {of} cohorts (use {allowed})")
    return _property(body, where) if kind == "property" else _leaf(kind, body, where)


def _cohort(item: Any, where: str) -> Cohort:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ConfigError(f"{where}: each cohort needs a name")
    name = item["name"]
    where = f"{where} {name!r}"
    if not IDENTIFIER.fullmatch(name):
        raise ConfigError(f"{where}: a cohort name must be lower-case letters, digits and _")
    unknown = sorted(set(item) - {"name", "of", "where"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (use name, of, where)")
    of = item.get("of", "person")
    if of not in SUBJECTS:
        raise ConfigError(f"{where}: `of` must be person or account, got {of!r}")
    if "where" not in item:
        raise ConfigError(f"{where}: needs `where` with a criterion")
    return Cohort(name, of, _criterion(item["where"], of, where))


def parse_cohorts(items: object, where: str) -> tuple[Cohort, ...]:
    """Validate the ``cohorts:`` list; every ``ConfigError`` names the cohort and the key."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ConfigError(f"{where}: `cohorts` must be a list")
    out: list[Cohort] = []
    for item in items:
        cohort = _cohort(item, f"{where}: cohort")
        if any(c.name == cohort.name for c in out):
            raise ConfigError(f"{where}: cohort {cohort.name!r} is defined twice")
        out.append(cohort)
    return tuple(out)
