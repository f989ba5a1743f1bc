"""Generated populations with planted structure, written as a real lake + catalog.

``build_world(root)`` writes events, profiles (what stage 2 would emit) and accounts to a
real ``Lake`` and publishes ``warehouse.duckdb``; it returns what was planted, so tests can
check the segment tools recover it:

- B2B: 12 accounts in known tiers (fit = 500 employees vs 50; engaged = 4 members active in
  the last 10 days vs 1 member last seen 60 days ago), NAICS/SIC codes, roles.
- B2C: 100 buyers in five RFM groups of 20 (champions, new, loyal, at_risk, hibernating)
  and people in known lifecycle stages.
- Personas (``personas=True``): three groups of 40 with distinct behaviour (pricing
  readers, docs readers, shoppers) and profile differences, with noise.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import ACCOUNT_SCHEMA, PROFILE_SCHEMA, records_to_table

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

RFM_GROUPS = {
    # group: (purchases, days since the last one)
    "champions": (11, 1),
    "new": (1, 3),
    "loyal": (4, 12),
    "at_risk": (7, 70),
    "hibernating": (2, 200),
}
LIFECYCLE = {
    # stage: days ago of each event
    "new": (3, 2),
    "active": (50, 40, 30, 20, 10, 2),
    "returning": (100, 95, 1),
    "dormant": (80, 45),
    "lapsing": (40, 15),
}
ROLES = ("engineer", "product", "manager", "executive")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class World:
    """The warehouse and what was planted in it."""

    root: Path
    lake: Lake
    warehouse: Path
    tiers: dict[str, str] = field(default_factory=dict)  # account -> A/B/C
    rfm: dict[str, str] = field(default_factory=dict)  # person -> group
    lifecycle: dict[str, str] = field(default_factory=dict)  # person -> stage
    personas: dict[str, int] = field(default_factory=dict)  # person -> planted persona
    events: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: list[dict[str, Any]] = field(default_factory=list)

    def event(
        self,
        person: str,
        name: str,
        at: datetime,
        account: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> None:
        self.events.append(
            {
                "event_id": f"e{len(self.events)}",
                "type": "track",
                "event": name,
                "anonymous_id": person,
                "person_id": person,
                "account_id": account,
                "timestamp": iso(at),
                "received_at": iso(at),
                "properties": properties or {},
                "defined_events": [],
            }
        )

    def person(self, person: str, **profile: Any) -> None:
        self.profiles[person] = {"person_id": person, "version": 1, **profile}


def _b2b(world: World) -> None:
    for i in range(12):
        fit, engaged = i % 2 == 0, i % 4 < 2
        account = f"acct{i:02d}"
        world.tiers[account] = "A" if fit and engaged else "B" if fit or engaged else "C"
        members = 4 if engaged else 1
        for m in range(members):
            person = f"u:{account}-{m}"
            role = ROLES[m]
            days = (m + 1) * 2 if engaged else 60
            for k in range(3):
                world.event(person, "Viewed Pricing", NOW - timedelta(days=days, hours=k), account)
            world.person(
                person,
                traits={"role": role, "title": "Director" if role == "manager" else "IC"},
                account_ids=[account],
                browser="Firefox" if i < 6 else "Chrome",
                os="Linux",
                email_kind="business",
            )
        world.accounts.append(
            {
                "account_id": account,
                "version": 1,
                "name": f"Account {i}",
                "employees": 500 if fit else 50,
                "annual_revenue": 5e7 if fit else 2e6,
                "naics_code": "511210" if i < 6 else None,
                "sic_code": None if i < 6 else "3571",
                "technologies": ["Salesforce"] if i % 3 == 0 else ["HubSpot"],
                "members": members,
                "active_users_30d": members if engaged else 0,
                "active_users_7d": members if engaged else 0,
                "roles": list(ROLES[:members]),
                "lead_score": 10.0,
                "traits": {"plan": "enterprise" if fit else "team"},
            }
        )


def _b2c(world: World) -> None:
    for group, (purchases, last_days) in RFM_GROUPS.items():
        for i in range(20):
            person = f"u:{group}-{i:02d}"
            world.rfm[person] = group
            for k in range(purchases):
                at = NOW - timedelta(days=last_days + 5 * k, minutes=i)
                world.event(person, "Order Completed", at, properties={"revenue": 50})
            world.person(person, traits={}, account_ids=[], email_kind="consumer", country="DE")
    for stage, days in LIFECYCLE.items():
        for i in range(5):
            person = f"u:life-{stage}-{i}"
            world.lifecycle[person] = stage
            for d in days:
                world.event(person, "$pageview", NOW - timedelta(days=d, minutes=i))
            world.person(person, traits={}, account_ids=[], country="FR")


_PERSONA_EVENTS = (
    {"Viewed Pricing": 8, "Requested Demo": 3, "$pageview": 10, "Read Docs": 1},
    {"Read Docs": 9, "Created Dashboard": 4, "$pageview": 12, "Viewed Pricing": 1},
    {"Added to Cart": 6, "Order Completed": 3, "$pageview": 6},
)


def _personas(world: World, rng: random.Random) -> None:
    for label, mix in enumerate(_PERSONA_EVENTS):
        for i in range(40):
            person = f"u:persona{label}-{i:02d}"
            world.personas[person] = label
            for name, mean in mix.items():
                for _ in range(max(0, round(rng.gauss(mean, mean / 5)))):
                    at = NOW - timedelta(days=rng.uniform(0, 20))
                    world.event(person, name, at, properties={"revenue": 40})
            world.person(
                person,
                traits={},
                account_ids=[],
                # Profile values lean with the persona but do not give it away.
                device="mobile" if (label == 2) != (rng.random() < 0.2) else "desktop",
                country=("US", "DE", "BR")[label] if rng.random() < 0.7 else rng.choice("XYZ"),
            )


def _finish_profiles(world: World) -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for e in world.events:
        seen[e["person_id"]].append(e["timestamp"])
    for person, profile in world.profiles.items():
        times = sorted(seen[person])
        profile |= {
            "first_seen": times[0],
            "last_seen": times[-1],
            "event_count": len(times),
            "session_count": len(times),
        }


def build_world(
    root: Path, *, b2b: bool = True, b2c: bool = True, personas: bool = False, seed: int = 7
) -> World:
    """Write the planted population to ``root/lake`` and publish ``root/warehouse.duckdb``."""
    lake = Lake(root / "lake")
    world = World(root, lake, root / "warehouse.duckdb")
    if b2b:
        _b2b(world)
    if b2c:
        _b2c(world)
    if personas:
        _personas(world, random.Random(seed))
    _finish_profiles(world)
    publish_catalog(world.warehouse, lake)
    lake.write("events", records_to_table(world.events))
    lake.write("profiles", records_to_table(world.profiles.values(), PROFILE_SCHEMA))
    if world.accounts:
        lake.write("accounts", records_to_table(world.accounts, ACCOUNT_SCHEMA))
    publish_catalog(world.warehouse, lake)
    return world
