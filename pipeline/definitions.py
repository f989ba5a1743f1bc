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
over history, so a definition added later applies to old events too.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError
from pipeline.selectors import Selector, SelectorError, matches, parse_selector

__all__ = ["Definitions", "EventDefinition", "load_definitions"]

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
class Definitions:
    """Everything declared in ``definitions.yaml`` (defined events, for now)."""

    events: tuple[EventDefinition, ...] = ()

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


def load_definitions(path: Path) -> Definitions:
    """Read ``definitions.yaml``; a missing file means no definitions."""
    if not path.exists():
        return Definitions()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with an `events` list")
    items = data.get("events") or []
    if not isinstance(items, list):
        raise ConfigError(f"{path}: `events` must be a list")
    definitions = tuple(_definition(item, f"{path}: event") for item in items)
    names = [d.name for d in definitions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: event {duplicates[0]!r} is defined twice")
    return Definitions(definitions)
