"""Person profiles as one pure fold: ``fold_profile(state, event, definitions)``.

Traits follow Segment and PostHog: an ``identify`` call's ``traits`` are ``$set``; any
event's ``properties`` may carry ``$set`` and ``$set_once`` (objects) and ``$unset`` (a
list of keys), as posthog-js sends them. ``$set`` overwrites, ``$set_once`` keeps the first
value, ``$unset`` removes; applied in arrival order (Kafka keeps one person's order).

Built-ins are order-free: first/last seen are min/max event times; the initial referrer and
UTM source come from the earliest event, the last URL and device/browser/OS/country from the
latest event that has them. Session count counts the events that opened a session (stage 1's
session id is derived from its first event). Rolling windows and the lead score's decay are
taken as of the person's last event, so the stream and a recomputation agree; no wall clock.

A replayed event (at-least-once after a crash) is recognised by its event_id among the last
``REMEMBERED`` this person saw and changes nothing.

The profile also keeps its last ``TAIL`` events in a compact form (``tail``) and which
retroactive seed last set each custom property (``seeds``): a seed computed over the lake
replaces a property's fold state and the tail re-folds the events the lake did not hold yet
(``pipeline.seeds``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pipeline.definitions import Definitions
from pipeline.emaildomains import email_domain, email_kind
from pipeline.identity import device_key
from pipeline.properties import (
    PropertyDefinition,
    condition_holds,
    event_matches,
    field_value,
)
from pipeline.sessions import session_id_for
from pipeline.timeutil import format_ts, parse_ts
from pipeline.useragent import parse_agent

__all__ = [
    "REMEMBERED",
    "TAIL",
    "ProfileState",
    "compact_event",
    "country_from_locale",
    "fold_custom",
    "fold_profile",
    "profile_record",
]

#: Event ids remembered per person to recognise replays: more than a commit interval's worth.
REMEMBERED = 256
#: Compact events kept per person for seeds to re-fold: more than the sink's lag in events.
TAIL = 32
#: Timestamps kept per windowed property; older entries beyond it are dropped (documented).
WINDOW_LIMIT = 10_000
#: Fields kept from the latest event that carries them.
_LATEST = ("url", "browser", "os", "device", "country")


@dataclass
class ProfileState:
    """Everything a person's profile needs to fold the next event; JSON-able."""

    person_id: str
    version: int = 0  # distinct events folded: also the profile's version in the lake
    first_seen: str | None = None
    last_seen: str | None = None
    session_count: int = 0
    #: [event time, event_id, referrer, utm_source] of the earliest event.
    first_event: list[Any] | None = None
    #: field -> [event time, event_id, value] of the latest event carrying it.
    latest: dict[str, list[Any]] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    accounts: list[str] = field(default_factory=list)
    #: custom property -> its fold state (see ``fold_custom``).
    custom: dict[str, Any] = field(default_factory=dict)
    recent: list[str] = field(default_factory=list)
    #: The last ``TAIL`` events, as ``compact_event`` keeps them.
    tail: list[dict[str, Any]] = field(default_factory=list)
    #: seed part name (``properties.<name>``) -> id of the seed that last set it.
    seeds: dict[str, str] = field(default_factory=dict)
    #: Seeds applied: they raise the profile's version (a newer profile) but fold no event.
    seeded: int = 0

    def to_json(self) -> dict[str, Any]:
        """The table's value form."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProfileState:
        """Inverse of ``to_json``."""
        return cls(**data)


def country_from_locale(locale: object) -> str | None:
    """``en-US`` / ``pt_BR`` → ``US`` / ``BR``; None when the locale names no region."""
    if not isinstance(locale, str):
        return None
    parts = locale.replace("_", "-").split("-")
    region = parts[-1] if len(parts) > 1 else ""
    return region.upper() if len(region) == 2 and region.isalpha() else None


def _key(event: Mapping[str, Any]) -> list[Any]:
    return [format_ts(_time(event)), str(event["event_id"])]


def _moment(text: str) -> datetime:
    # Only for times this module wrote itself with format_ts.
    moment = parse_ts(text)
    assert moment is not None, text
    return moment


def _time(event: Mapping[str, Any]) -> datetime:
    moment = parse_ts(event.get("timestamp"))
    if moment is None:
        raise ValueError(f"event {event.get('event_id')!r} has no valid timestamp")
    return moment


def _observed(event: Mapping[str, Any]) -> dict[str, Any]:
    context = event.get("context") or {}
    page = context.get("page") or {}
    campaign = context.get("campaign") or {}
    agent = parse_agent(context.get("userAgent"))
    return {
        "url": page.get("url"),
        "referrer": page.get("referrer") or None,
        "utm_source": campaign.get("source") if isinstance(campaign, dict) else None,
        "browser": agent.browser,
        "os": agent.os,
        "device": agent.device,
        "country": country_from_locale(context.get("locale")),
    }


def _apply_traits(traits: dict[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    traits = dict(traits)
    props = event.get("properties") or {}
    if event.get("type") == "identify" and isinstance(event.get("traits"), dict):
        traits.update(event["traits"])
    if isinstance(props.get("$set"), dict):
        traits.update(props["$set"])
    if isinstance(props.get("$set_once"), dict):
        for name, value in props["$set_once"].items():
            traits.setdefault(name, value)
    if isinstance(props.get("$unset"), list):
        for name in props["$unset"]:
            traits.pop(str(name), None)
    return traits


def compact_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """What a custom property's fold can read of an event (no element chain, no ids of
    other kinds): kept in the profile's tail for re-folding after a seed."""
    kept = {k: event[k] for k in _COMPACT if event.get(k) is not None}
    context = event.get("context")
    if isinstance(context, Mapping):
        # Field paths may name these; the user agent is parsed into built-ins already.
        kept["context"] = {k: context[k] for k in ("page", "campaign", "locale") if k in context}
    return kept


_COMPACT = ("event_id", "timestamp", "type", "event", "defined_events", "properties", "traits")


def fold_custom(
    definition: PropertyDefinition,
    saved: Any,
    event: Mapping[str, Any],
    last_seen: str,
    at: list[Any] | None = None,
) -> Any:
    """One custom property's fold state after ``event`` (``last_seen``: the person's latest
    event time, for rolling windows; ``at``: the event's ``[time, event_id]`` if the caller
    has it, parsed once per event rather than once per property)."""
    kind, at = definition.kind, at or _key(event)
    if kind == "score":
        weight = dict(definition.weights).get(str(event.get("event")), 0.0)
        weight += sum(
            w for name, w in definition.weights if name in (event.get("defined_events") or ())
        )
        if not weight:
            return saved
        return _decayed_add(saved, at[0], weight, definition.half_life)
    if kind == "case" or not event_matches(definition.events, event):
        return saved
    if kind in ("first", "last"):
        value = field_value(event, definition.field)
        if value is None:
            return saved
        if saved is None or (at < saved[:2] if kind == "first" else at > saved[:2]):
            return [*at, value]
        return saved
    amount: Any = 1
    if kind == "sum":
        amount = field_value(event, definition.field)
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            return saved
    if definition.window is None:
        return (saved or 0) + amount
    horizon = format_ts(_moment(last_seen) - definition.window)
    kept = [entry for entry in saved or [] if entry[0] >= horizon]
    if at[0] >= horizon:
        kept.append([at[0], amount])
    return sorted(kept)[-WINDOW_LIMIT:]


def _decayed_add(saved: Any, at: str, weight: float, half_life: timedelta | None) -> list[Any]:
    # Kept as [reference time, score at that time]; moving the reference forward decays.
    assert half_life is not None
    if saved is None:
        return [at, weight]
    reference, score = saved
    gap = (_moment(at) - _moment(reference)).total_seconds()
    factor = math.pow(0.5, abs(gap) / half_life.total_seconds())
    if gap > 0:
        return [at, score * factor + weight]
    return [reference, score + weight * factor]


def fold_profile(
    state: ProfileState | None, event: Mapping[str, Any], definitions: Definitions
) -> tuple[ProfileState, bool]:
    """Fold one enriched event into its person's profile; ``changed`` is False only for a
    replay of an event already folded."""
    person = str(event["person_id"])
    if state is None:
        state = ProfileState(person)
    event_id = str(event["event_id"])
    if event_id in state.recent:
        return state, False
    at = _key(event)
    observed = _observed(event)
    first_seen = min(filter(None, (state.first_seen, at[0])))
    last_seen = max(filter(None, (state.last_seen, at[0])))
    first_event = state.first_event
    if first_event is None or at < first_event[:2]:
        first_event = [*at, observed["referrer"], observed["utm_source"]]
    latest = dict(state.latest)
    for name in _LATEST:
        if observed[name] is not None and (name not in latest or at > latest[name][:2]):
            latest[name] = [*at, observed[name]]
    opened = event.get("session_id") is not None and event["session_id"] == session_id_for(
        device_key(event), event_id
    )
    accounts = state.accounts
    if event.get("account_id") and event["account_id"] not in accounts:
        accounts = sorted([*accounts, str(event["account_id"])])
    custom = {
        d.name: fold_custom(d, state.custom.get(d.name), event, last_seen, at)
        for d in definitions.properties
        if d.kind != "case"
    }
    new = ProfileState(
        person_id=person,
        version=state.version + 1,
        first_seen=first_seen,
        last_seen=last_seen,
        session_count=state.session_count + int(opened),
        first_event=first_event,
        latest=latest,
        traits=_apply_traits(state.traits, event),
        accounts=accounts,
        custom={k: v for k, v in custom.items() if v is not None},
        recent=[*state.recent, event_id][-REMEMBERED:],
        tail=[*state.tail, compact_event(event)][-TAIL:],
        seeds=state.seeds,
        seeded=state.seeded,
    )
    return new, True


def _custom_value(definition: PropertyDefinition, saved: Any, last_seen: str) -> Any:
    kind = definition.kind
    if saved is None:
        return 0 if kind in ("count", "sum", "score") else None
    if kind in ("first", "last"):
        return saved[2]
    if kind == "score":
        assert definition.half_life is not None
        gap = (_moment(last_seen) - _moment(saved[0])).total_seconds()
        return round(saved[1] * math.pow(0.5, gap / definition.half_life.total_seconds()), 6)
    if definition.window is None:
        return saved
    horizon = format_ts(_moment(last_seen) - definition.window)
    return sum(amount for entry_at, amount in saved if entry_at >= horizon)


def profile_record(state: ProfileState, definitions: Definitions) -> dict[str, Any]:
    """The profile as emitted on ``autocap.profiles`` and stored in the lake."""
    first = state.first_event or [None, None, None, None]
    record: dict[str, Any] = {
        "person_id": state.person_id,
        "version": state.version + state.seeded,
        "first_seen": state.first_seen,
        "last_seen": state.last_seen,
        "event_count": state.version,
        "session_count": state.session_count,
        "initial_referrer": first[2],
        "initial_utm_source": first[3],
        "last_url": None,
        **{name: None for name in _LATEST if name != "url"},
        "email_domain": email_domain(state.traits.get("email")),
        "email_kind": email_kind(state.traits.get("email")),
        "account_ids": list(state.accounts),
        "traits": state.traits,
    }
    for name, (_, _, value) in state.latest.items():
        record["last_url" if name == "url" else name] = value
    values: dict[str, Any] = {}
    for definition in definitions.properties:
        if definition.kind == "case":
            values[definition.name] = _case(definition, values, record)
        else:
            saved = state.custom.get(definition.name)
            values[definition.name] = _custom_value(definition, saved, state.last_seen or "")
    record["properties"] = values
    return record


def _case(
    definition: PropertyDefinition, values: Mapping[str, Any], record: Mapping[str, Any]
) -> Any:
    def lookup(name: str) -> Any:
        for source in (values, record, record["traits"]):
            if name in source:
                return source[name]
        return None

    for conditions, then in definition.cases:
        if all(condition_holds(c, lookup(c.name)) for c in conditions):
            return then
    return definition.default
