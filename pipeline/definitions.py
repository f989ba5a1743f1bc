"""Defined events (Heap's virtual events), declared in ``definitions.yaml``. Pure matching.

```yaml
events:
  - name: Clicked Buy
    match:
      event: $click                 # one event name or a list
      selector: "#plans .card > button.buy"
      text: "Buy*"                  # glob over the matched element's text (case-insensitive)
      url: "*/pricing*"             # glob over context.page.url
```

Every condition given must hold. The same ``defined_events(event)`` runs in the stream and
over history (the materializer), so a definition added later applies to old events too.

Funnels the materializer keeps as ``funnel_<name>`` tables take the keys of ``autocap
funnel``'s flags:

```yaml
funnels:
  - name: trial_to_paid           # lower case, digits and _ (it names a table)
    steps: [Viewed Pricing, Signed Up, Upgraded]
    window: 7d
    mode: ordered                 # ordered | strict | unordered
```

Custom person properties (``properties:``) are described and validated in
``pipeline.properties``; behavioural cohorts (``cohorts:``) in ``pipeline.cohort_spec``;
segments (``segments:``, ``segment_rules:``) in ``pipeline.segments.spec`` and
``pipeline.segments.rules``.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from pipeline.cohort_spec import Cohort, parse_cohorts
from pipeline.errors import ConfigError, FunnelError
from pipeline.properties import PropertyDefinition, parse_properties
from pipeline.segments.rules import SegmentRules, parse_rules
from pipeline.segments.spec import SegmentDefinition, cohorts_used, parse_segments
from pipeline.selectors import Selector, SelectorError, matches, parse_selector
from pipeline.sqlfiles import IDENTIFIER
from pipeline.warehouse.funnel_spec import FunnelSpec

__all__ = ["Definitions", "EventDefinition", "NamedFunnel", "load_definitions"]

_MATCH_KEYS = {"event", "selector", "text", "url"}


@dataclass(frozen=True)
class EventDefinition:
    """One defined event: a name and the conditions an event must meet."""

    name: str
    events: tuple[str, ...] = ()
    selector: Selector | None = None
    text: str | None = None
    url: str | None = None

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` (an enriched record) is an occurrence of this definition."""
        if self.events and event.get("event") not in self.events:
            return False
        if self.url is not None:
            page = (event.get("context") or {}).get("page") or {}
            if not fnmatch.fnmatchcase(str(page.get("url") or ""), self.url):
                return False
        chain: Sequence[Mapping[str, Any]] = event.get("elements") or []
        if self.selector is not None and not matches(self.selector, chain):
            return False
        if self.text is not None:
            wanted = self.text.lower()
            texts = [str(e.get("text") or "").lower() for e in chain]
            if not any(fnmatch.fnmatchcase(t, wanted) for t in texts):
                return False
        return True


@dataclass(frozen=True)
class NamedFunnel:
    """A funnel kept as the ``funnel_<name>`` table."""

    name: str
    spec: FunnelSpec


@dataclass(frozen=True)
class Definitions:
    """Everything declared in ``definitions.yaml``: defined events, funnels, custom
    person properties and cohorts, for now."""

    events: tuple[EventDefinition, ...] = ()
    funnels: tuple[NamedFunnel, ...] = ()
    properties: tuple[PropertyDefinition, ...] = ()
    segments: tuple[SegmentDefinition, ...] = ()
    segment_rules: SegmentRules = field(default_factory=SegmentRules)
    cohorts: tuple[Cohort, ...] = ()
    #: Changes whenever any event definition changes: tags computed under another version
    #: must be recomputed.
    events_version: str = "none"

    def defined_events(self, event: Mapping[str, Any]) -> list[str]:
        """Names of the defined events ``event`` is an occurrence of."""
        return [d.name for d in self.events if d.matches(event)]


def _definition(item: object, where: str) -> EventDefinition:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ConfigError(f"{where}: each event needs a name")
    where = f"{where} {item['name']!r}"
    match = item.get("match")
    if not isinstance(match, dict) or not match:
        raise ConfigError(f"{where}: needs a `match` with event, selector, text or url")
    unknown = sorted(set(match) - _MATCH_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown match key {unknown[0]!r} (use {', '.join(sorted(_MATCH_KEYS))})"
        )
    names = match.get("event")
    events = tuple([names] if isinstance(names, str) else names or ())
    if not all(isinstance(n, str) for n in events):
        raise ConfigError(f"{where}: `event` must be a name or a list of names")
    selector = None
    if match.get("selector") is not None:
        try:
            selector = parse_selector(str(match["selector"]))
        except SelectorError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    for key in ("text", "url"):
        if match.get(key) is not None and not isinstance(match[key], str):
            raise ConfigError(f"{where}: `{key}` must be a string pattern")
    return EventDefinition(item["name"], events, selector, match.get("text"), match.get("url"))


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice (PyYAML silently keeps the last one, so a
    second `funnels:` would quietly erase the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_definitions(path: Path) -> Definitions:
    """Read ``definitions.yaml``; a missing file means no definitions."""
    if not path.exists():
        return Definitions()
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader) or {}  # noqa: S506
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with an `events` list")
    items = data.get("events") or []
    if not isinstance(items, list):
        raise ConfigError(f"{path}: `events` must be a list")
    definitions = tuple(_definition(item, f"{path}: event") for item in items)
    _no_duplicates([d.name for d in definitions], f"{path}: event")
    version = hashlib.sha256(orjson.dumps(items, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    funnel_items = data.get("funnels") or []
    if not isinstance(funnel_items, list):
        raise ConfigError(f"{path}: `funnels` must be a list")
    funnels = tuple(_funnel(item, f"{path}: funnel") for item in funnel_items)
    _no_duplicates([f.name for f in funnels], f"{path}: funnel")
    properties = parse_properties(data.get("properties"), str(path))
    cohorts = parse_cohorts(data.get("cohorts"), str(path))
    segments = parse_segments(data.get("segments"), str(path))
    rules = parse_rules(data.get("segment_rules"), str(path))
    declared = {c.name for c in cohorts}
    for segment in segments:
        unknown = [c for c in cohorts_used(segment.where) if c not in declared]
        if unknown:
            raise ConfigError(
                f"{path}: segment {segment.name!r} uses cohort {unknown[0]!r}, which `cohorts:`"
                " does not declare"
            )
    return Definitions(
        definitions,
        funnels,
        properties,
        cohorts=cohorts,
        segments=segments,
        segment_rules=rules,
        events_version=version,
    )


def _no_duplicates(names: list[str], where: str) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where} {duplicates[0]!r} is defined twice")


def _funnel(item: object, where: str) -> NamedFunnel:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ConfigError(f"{where}: each funnel needs a name")
    name = item["name"]
    if not IDENTIFIER.fullmatch(name):
        raise ConfigError(
            f"{where} {name!r}: a funnel name names the table funnel_<name>: use lower-case"
            " letters, digits and _"
        )
    try:
        spec = FunnelSpec.from_mapping({k: v for k, v in item.items() if k != "name"})
    except FunnelError as exc:
        raise ConfigError(f"{where} {name!r}: {exc}") from None
    return NamedFunnel(name, spec)
