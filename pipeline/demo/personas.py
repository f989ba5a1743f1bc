"""Who visits the demo site: B2B accounts with firmographics and several roles each, and
B2C shoppers. Fixed data, so seeded journeys are repeatable."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACCOUNTS", "ROLES", "Account", "Role"]


@dataclass(frozen=True)
class Account:
    """A company evaluating Nimbus (the traits of its ``group`` call)."""

    domain: str
    name: str
    industry: str
    employees: int
    revenue: int  # annual, in EUR
    country: str
    plan_seats: int  # seats it buys when it upgrades

    def traits(self) -> dict[str, object]:
        """Firmographic traits as the ``group`` call sends them."""
        return {
            "name": self.name,
            "industry": self.industry,
            "employees": self.employees,
            "revenue": self.revenue,
            "country": self.country,
            "domain": self.domain,
        }


@dataclass(frozen=True)
class Role:
    """A person's job at an account; ``weight`` is how often such a person visits."""

    title: str
    role: str
    weight: int
    #: How far this role usually goes: researchers stop at pricing, buyers upgrade.
    depth: float


ACCOUNTS = (
    Account("acme.io", "Acme", "Software", 250, 40_000_000, "US", 25),
    Account("globex.com", "Globex", "Manufacturing", 4_200, 900_000_000, "DE", 120),
    Account("initech.net", "Initech", "Financial Services", 900, 210_000_000, "GB", 60),
    Account("umbrella.org", "Umbrella", "Healthcare", 12_000, 3_100_000_000, "US", 300),
    Account("hooli.dev", "Hooli", "Software", 45, 6_000_000, "US", 8),
    Account("vandelay.fr", "Vandelay", "Retail", 140, 28_000_000, "FR", 12),
    Account("stark.co", "Stark", "Manufacturing", 30_000, 12_000_000_000, "US", 500),
    Account("wayne.nl", "Wayne", "Financial Services", 1_800, 450_000_000, "NL", 80),
    Account("soylent.se", "Soylent", "Food & Beverage", 600, 95_000_000, "SE", 20),
    Account("tyrell.jp", "Tyrell", "Software", 75, 11_000_000, "JP", 10),
)

ROLES = (
    Role("Software Engineer", "engineer", 5, 0.55),
    Role("Product Manager", "product", 3, 0.7),
    Role("Director of Engineering", "manager", 2, 0.8),
    Role("VP Marketing", "marketing", 2, 0.6),
    Role("CTO", "executive", 1, 0.95),
    Role("Procurement Manager", "procurement", 1, 0.9),
)
