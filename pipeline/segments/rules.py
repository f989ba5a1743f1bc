"""The configurable rules behind the built-in segment columns (``segment_rules:`` in
``definitions.yaml``); every key is optional, the defaults are below.

```yaml
segment_rules:
  firmographics:
    employee_bands: [10, 50, 200, 1000, 5000]   # size_band: 1-9, 10-49, ..., 5000+
    revenue_bands: [1000000, 10000000, 100000000, 1000000000]   # revenue_tier
  tiering:                      # tier A: fit and engaged, B: one of the two, C: neither
    fit_min_employees: 200      # fit: at least this many employees...
    fit_sectors: []             # ...and (if given) sector or industry among these
    engaged_min_active_users_30d: 3   # engaged: this many members active in 30 days...
    engaged_min_lead_score: 0         # ...and an account lead score at least this
  committee:
    roles: [engineer, product, manager, marketing, executive, procurement]
    window: 30d                 # roles_engaged: distinct member roles seen in this window
  rfm:
    event: Order Completed      # raw or defined event name of a purchase
    amount: properties.revenue  # its amount field
    window: 365d                # purchases counted (omit: all history)
  lifecycle: {new: 14d, active: 7d, dormant: 30d}
  quality:
    conversion_event: Upgraded  # what `autocap segment check` compares segments on
```
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pipeline.errors import ConfigError
from pipeline.properties import parse_duration

__all__ = ["SegmentRules", "band_labels", "parse_rules"]

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class SegmentRules:
    """Thresholds of the B2B and B2C toolkits (see the module docstring)."""

    employee_bands: tuple[float, ...] = (10, 50, 200, 1000, 5000)
    revenue_bands: tuple[float, ...] = (1e6, 1e7, 1e8, 1e9)
    fit_min_employees: float = 200
    fit_sectors: tuple[str, ...] = ()
    engaged_min_active_users_30d: float = 3
    engaged_min_lead_score: float = 0
    committee_roles: tuple[str, ...] = (
        "engineer",
        "product",
        "manager",
        "marketing",
        "executive",
        "procurement",
    )
    committee_window: timedelta = 30 * _DAY
    rfm_event: str = "Order Completed"
    rfm_amount: tuple[str, ...] = ("properties", "revenue")
    rfm_window: timedelta | None = 365 * _DAY
    lifecycle_new: timedelta = 14 * _DAY
    lifecycle_active: timedelta = 7 * _DAY
    lifecycle_dormant: timedelta = 30 * _DAY
    conversion_event: str | None = None


def band_labels(edges: tuple[float, ...]) -> list[str]:
    """Labels of the bands the edges cut: ``[10, 50]`` gives ``<10, 10-49, 50+``."""

    def short(x: float) -> str:
        for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if x >= scale and x >= 1e5:
                return f"{x / scale:g}{suffix}"
        return f"{x:g}"

    labels = [f"<{short(edges[0])}"]
    labels += [f"{short(a)}-{short(b)}" for a, b in itertools.pairwise(edges)]
    return [*labels, f"{short(edges[-1])}+"]


def _numbers(value: Any, key: str, where: str) -> tuple[float, ...]:
    ok = (
        isinstance(value, list)
        and value
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not ok or list(value) != sorted(set(value)):
        raise ConfigError(f"{where}: `{key}` must be an increasing list of numbers")
    return tuple(float(v) for v in value)


def _number(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: `{key}` must be a number, 0 or more")
    return float(value)


def _names(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: `{key}` must be a list of names")
    return tuple(value)


_SECTIONS: dict[str, dict[str, str]] = {
    # section -> yaml key -> SegmentRules field
    "firmographics": {"employee_bands": "employee_bands", "revenue_bands": "revenue_bands"},
    "tiering": {
        "fit_min_employees": "fit_min_employees",
        "fit_sectors": "fit_sectors",
        "engaged_min_active_users_30d": "engaged_min_active_users_30d",
        "engaged_min_lead_score": "engaged_min_lead_score",
    },
    "committee": {"roles": "committee_roles", "window": "committee_window"},
    "rfm": {"event": "rfm_event", "amount": "rfm_amount", "window": "rfm_window"},
    "lifecycle": {
        "new": "lifecycle_new",
        "active": "lifecycle_active",
        "dormant": "lifecycle_dormant",
    },
    "quality": {"conversion_event": "conversion_event"},
}


def _value(field: str, value: Any, key: str, where: str) -> Any:
    if field in ("employee_bands", "revenue_bands"):
        return _numbers(value, key, where)
    if field in ("fit_sectors", "committee_roles"):
        return _names(value, key, where)
    if field.endswith(("_window", "_new", "_active", "_dormant")):
        if value is None and field == "rfm_window":
            return None
        return parse_duration(value, key, where)
    if field in ("rfm_event", "conversion_event"):
        if value is None and field == "conversion_event":
            return None  # no conversion event: check skips distinctness
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: `{key}` must be an event name")
        return value
    if field == "rfm_amount":
        root, _, rest = str(value).partition(".")
        if root != "properties" or not rest:
            raise ConfigError(f"{where}: `{key}` must be a properties.<field> path")
        return tuple(str(value).split("."))
    return _number(value, key, where)


def parse_rules(data: object, where: str) -> SegmentRules:
    """Validate ``segment_rules:``; unknown sections or keys are refused by name."""
    if data is None:
        return SegmentRules()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: `segment_rules` must be a mapping")
    values: dict[str, Any] = {}
    for section, keys in data.items():
        here = f"{where}: segment_rules.{section}"
        if section not in _SECTIONS:
            raise ConfigError(f"{here}: unknown section (use {', '.join(_SECTIONS)})")
        if not isinstance(keys, dict):
            raise ConfigError(f"{here}: must be a mapping")
        for key, value in keys.items():
            if key not in _SECTIONS[section]:
                allowed = ", ".join(_SECTIONS[section])
                raise ConfigError(f"{here}: unknown key {key!r} (use {allowed})")
            field = _SECTIONS[section][key]
            values[field] = _value(field, value, key, here)
    rules = SegmentRules(**values)
    if not rules.lifecycle_active <= rules.lifecycle_dormant:
        raise ConfigError(f"{where}: segment_rules.lifecycle: `active` must not exceed `dormant`")
    return rules
