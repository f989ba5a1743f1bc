"""B2B accounts as one pure fold: ``fold_account(state, update)``.

Updates reach an account (keyed by account_id) from the profiles stage:

- ``group``: a ``group`` call's traits, applied as ``$set`` in arrival order. Firmographics
  are read from Segment's group traits (``industry``, ``employees``, ``annual_revenue`` /
  ``annualRevenue``, ``country`` / ``address.country``, ``region`` / ``address.state``,
  ``sic_code`` / ``sicCode``, ``naics_code`` / ``naicsCode``, ``technologies``) and banded.
- ``member``: a snapshot of a member's profile (last seen, title, role, lead score, email
  kind) with the profile's version; an older or equal version changes nothing.

Roll-ups: active users in the 7 and 30 days before the account's last activity (the
newest member last_seen; no wall clock, so stream and recomputation agree), distinct titles
and roles, last activity, business/consumer members, and the account lead score, the
**sum** of its members' lead scores (several engaged people outrank one).

Replays are harmless: a group update is recognised by its event_id among the last
``REMEMBERED``, a member update by its version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from pipeline.timeutil import format_ts, parse_ts

__all__ = [
    "REMEMBERED",
    "AccountState",
    "account_record",
    "account_updates",
    "employee_band",
    "fold_account",
    "forget_members",
    "revenue_band",
]

REMEMBERED = 256
_EMPLOYEE_BANDS = (
    (10, "1-10"),
    (50, "11-50"),
    (200, "51-200"),
    (1000, "201-1000"),
    (5000, "1001-5000"),
)
_REVENUE_BANDS = (
    (1_000_000, "<1M"),
    (10_000_000, "1M-10M"),
    (50_000_000, "10M-50M"),
    (100_000_000, "50M-100M"),
    (1_000_000_000, "100M-1B"),
)


@dataclass
class AccountState:
    """An account's group traits and its members' latest snapshots; JSON-able."""

    account_id: str
    group_events: int = 0
    traits: dict[str, Any] = field(default_factory=dict)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    recent: list[str] = field(default_factory=list)
    #: Versions of members removed by ``autocap forget``, plus one each: the account's
    #: version must keep growing (the latest version wins downstream).
    retired: int = 0

    def to_json(self) -> dict[str, Any]:
        """The table's value form."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AccountState:
        """Inverse of ``to_json``."""
        return cls(**data)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").strip())
        except ValueError:
            return None
    return None


def employee_band(employees: Any) -> str | None:
    """1-10, 11-50, 51-200, 201-1000, 1001-5000, 5000+; None when not a positive count."""
    count = _number(employees)
    if count is None or count < 1:
        return None
    return next((band for top, band in _EMPLOYEE_BANDS if count <= top), "5000+")


def revenue_band(revenue: Any) -> str | None:
    """<1M, 1M-10M, 10M-50M, 50M-100M, 100M-1B, 1B+ (annual, in the traits' currency)."""
    amount = _number(revenue)
    if amount is None or amount < 0:
        return None
    return next((band for top, band in _REVENUE_BANDS if amount < top), "1B+")


def account_updates(event: Mapping[str, Any], profile: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What one folded event tells its person's accounts: the group call's traits, and the
    member's new snapshot for every account the person belongs to."""
    updates: list[dict[str, Any]] = []
    if event.get("type") == "group" and event.get("account_id"):
        updates.append(
            {
                "kind": "group",
                "account_id": str(event["account_id"]),
                "event_id": str(event["event_id"]),
                "traits": event.get("traits") or {},
            }
        )
    traits = profile.get("traits") or {}
    member = {
        "kind": "member",
        "person_id": profile["person_id"],
        "version": profile["version"],
        "last_seen": profile["last_seen"],
        "title": traits.get("title"),
        "role": traits.get("role"),
        "lead_score": _lead_score(profile.get("properties") or {}),
        "email_kind": profile.get("email_kind"),
    }
    updates.extend({**member, "account_id": a} for a in profile.get("account_ids") or ())
    return updates


def _lead_score(properties: Mapping[str, Any]) -> float:
    # The member's `lead_score` property if declared (any kind that yields a number).
    score = properties.get("lead_score")
    return float(score) if isinstance(score, int | float) and not isinstance(score, bool) else 0.0


def fold_account(
    state: AccountState | None, update: Mapping[str, Any]
) -> tuple[AccountState, bool]:
    """Fold one update into its account; ``changed`` is False when it adds nothing new."""
    account = str(update["account_id"])
    if state is None:
        state = AccountState(account)
    if update.get("kind") == "group":
        event_id = str(update["event_id"])
        if event_id in state.recent:
            return state, False
        traits = update.get("traits")
        return AccountState(
            account,
            state.group_events + 1,
            {**state.traits, **(traits if isinstance(traits, dict) else {})},
            state.members,
            [*state.recent, event_id][-REMEMBERED:],
            state.retired,
        ), True
    person = str(update["person_id"])
    saved = state.members.get(person)
    if saved is not None and saved["version"] >= update["version"]:
        return state, False
    snapshot = {k: update.get(k) for k in ("version", "last_seen", "title", "role")}
    snapshot |= {k: update.get(k) for k in ("lead_score", "email_kind")}
    members = {**state.members, person: snapshot}
    return replace(state, members=members), True


def forget_members(state: AccountState, persons: Iterable[str]) -> tuple[AccountState, bool]:
    """The account without these members (``autocap forget``); ``changed`` is False when
    none of them is a member (a replayed forget record). The version still grows."""
    gone = {p: state.members[p] for p in persons if p in state.members}
    if not gone:
        return state, False
    members = {p: m for p, m in state.members.items() if p not in gone}
    retired = state.retired + sum(m["version"] + 1 for m in gone.values())
    return replace(state, members=members, retired=retired), True


def _firmographics(traits: Mapping[str, Any]) -> dict[str, Any]:
    address = traits.get("address")
    if not isinstance(address, dict):
        address = {}
    employees = _number(traits.get("employees"))
    revenue = _number(traits.get("annual_revenue", traits.get("annualRevenue")))
    technologies = traits.get("technologies") or []
    if isinstance(technologies, str):
        technologies = [t.strip() for t in technologies.split(",")]
    return {
        "name": traits.get("name"),
        "industry": traits.get("industry"),
        "employees": int(employees) if employees is not None else None,
        "employee_band": employee_band(employees),
        "annual_revenue": revenue,
        "revenue_band": revenue_band(revenue),
        "country": traits.get("country") or address.get("country"),
        "region": traits.get("region") or address.get("state"),
        "sic_code": _code(traits.get("sic_code", traits.get("sicCode"))),
        "naics_code": _code(traits.get("naics_code", traits.get("naicsCode"))),
        "technologies": sorted({str(t) for t in technologies if t}),
    }


def _code(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else str(value)


def account_record(state: AccountState) -> dict[str, Any]:
    """The account as emitted on ``autocap.accounts`` and stored in the lake."""
    members = state.members.values()
    seen = [m["last_seen"] for m in members if m.get("last_seen")]
    last = max(seen) if seen else None

    def active(days: int) -> int:
        if last is None:
            return 0
        moment = parse_ts(last)
        assert moment is not None
        since = format_ts(moment - timedelta(days=days))
        return sum(1 for at in seen if at >= since)

    return {
        "account_id": state.account_id,
        # Grows with every update that changed something, whatever their order.
        "version": state.group_events + state.retired + sum(m["version"] for m in members),
        **_firmographics(state.traits),
        "traits": state.traits,
        "members": len(state.members),
        "active_users_7d": active(7),
        "active_users_30d": active(30),
        "titles": sorted({str(m["title"]) for m in members if m.get("title")}),
        "roles": sorted({str(m["role"]) for m in members if m.get("role")}),
        "lead_score": round(sum(m.get("lead_score") or 0.0 for m in members), 6),
        "last_activity": last,
        "business_users": sum(1 for m in members if m.get("email_kind") == "business"),
        "consumer_users": sum(1 for m in members if m.get("email_kind") == "consumer"),
    }
