"""Seeded, pure generation of demo visitors' messages (Segment spec, as autocap.js sends).

B2B visitors belong to an account and hold a role there; their journey walks the SaaS
funnel (home → pricing → demo request → signup/trial → app → upgrade), stopping earlier
the less their role buys. B2C visitors browse the shop, add to cart and sometimes buy,
with the order's ``revenue``. Clicks carry element chains shaped like the site's DOM
(``pipeline/demo/site/``), so the demo's defined events match simulated and real clicks.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pipeline.demo.personas import ACCOUNTS, ROLES, Account, Role
from pipeline.demo.site import PAGES, PRODUCTS, Product
from pipeline.timeutil import format_ts

__all__ = ["SITE", "Visitor", "history", "journey"]

#: Where the demo site runs by default; page URLs in simulated events point there.
SITE = "http://127.0.0.1:8080"
_LIBRARY = {"name": "autocap.js", "version": "demo"}
_ROOT = [{"tag": "body", "nth_child": 2, "nth_of_type": 1}, {"tag": "html"}]


class Visitor:
    """One browser: builds that visitor's messages with increasing timestamps."""

    def __init__(self, rng: random.Random, at: datetime, anon: str, site: str = SITE) -> None:
        self.rng = rng
        self.at = at
        self.site = site
        self.anon = anon  # the autocap_id cookie: a returning visitor keeps it
        self.user: str | None = None
        self.path = "/"
        self.out: list[dict[str, Any]] = []

    def _id(self) -> str:
        return f"demo-{self.rng.getrandbits(96):024x}"

    def _message(self, kind: str, **fields: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": kind,
            "messageId": self._id(),
            "anonymousId": self.anon,
            "timestamp": format_ts(self.at),
            **fields,
        }
        if self.user:
            message["userId"] = self.user
        self.out.append(message)
        return message

    def _context(self, referrer: str | None = None) -> dict[str, Any]:
        title = PAGES[self.path].title if self.path in PAGES else "Shop"
        page = {"path": self.path, "url": self.site + self.path, "title": title + " · Nimbus"}
        if referrer:
            page["referrer"] = referrer
        return {"page": page, "library": _LIBRARY, "locale": "en-US"}

    def wait(self, low: int, high: int) -> None:
        """Time passes on the page (seconds)."""
        self.at += timedelta(seconds=self.rng.randint(low, high))

    def view(self, path: str) -> None:
        """A ``$pageview`` of ``path`` (what autocap.js sends on load)."""
        referrer = self.site + self.path if self.out else None
        self.path = path
        self.wait(2, 30)
        self._message("track", event="$pageview", context=self._context(referrer))

    def click(self, target: dict[str, Any], *parents: dict[str, Any]) -> None:
        """A ``$click`` with the element chain from ``target`` up to ``<html>``."""
        self.wait(3, 60)
        main = {"tag": "main", "id": self._main_id(), "nth_child": 2, "nth_of_type": 1}
        chain = [target, *parents, main, *_ROOT]
        self._message("track", event="$click", context=self._context(), elements=chain)

    def nav_click(self, id_: str, text: str, href: str) -> None:
        """A ``$click`` on a link of the header every page has."""
        self.wait(3, 60)
        target = {"tag": "a", "id": id_, "text": text, "href": href}
        chain = [target, {"tag": "header", "id": "nav", "nth_child": 1, "nth_of_type": 1}, *_ROOT]
        self._message("track", event="$click", context=self._context(), elements=chain)

    def submit(self, form_id: str) -> None:
        """A ``$submit`` of the form ``#form_id``."""
        self.wait(10, 90)
        main = {"tag": "main", "id": self._main_id(), "nth_child": 2, "nth_of_type": 1}
        chain = [{"tag": "form", "id": form_id, "nth_child": 2, "nth_of_type": 1}, main, *_ROOT]
        self._message("track", event="$submit", context=self._context(), elements=chain)

    def track(self, event: str, properties: dict[str, Any]) -> None:
        """An explicit ``autocap.track`` call."""
        self._message("track", event=event, properties=properties, context=self._context())

    def identify(self, user: str, traits: dict[str, Any]) -> None:
        """``autocap.identify``: from here on the visitor is ``user``."""
        self.user = user
        self._message("identify", traits=traits, context=self._context())

    def group(self, account: Account) -> None:
        """``autocap.group`` with the account's firmographics."""
        self._message(
            "group", groupId=account.domain, traits=account.traits(), context=self._context()
        )

    def _main_id(self) -> str:
        page = PAGES.get(self.path)
        return page.file.removesuffix(".html") if page else "product"


def _button(id_: str, text: str, *classes: str, tag: str = "button") -> dict[str, Any]:
    return {"tag": tag, "id": id_, "classes": ["btn", *classes], "text": text}


def _plan_card(plan: str, nth: int) -> list[dict[str, Any]]:
    return [
        {
            "tag": "div",
            "classes": ["card", "plan"],
            "nth_child": nth,
            "nth_of_type": nth,
            "attributes": {"data-plan": plan},
        },
        {"tag": "div", "id": "plans", "classes": ["cards"]},
    ]


def _b2b(v: Visitor, account: Account, role: Role, email: str) -> None:
    rng = v.rng
    v.view("/")
    if rng.random() < 0.4:
        v.click(
            {
                "tag": "a",
                "id": "hero-docs",
                "classes": ["btn", "secondary"],
                "text": "Read the docs",
                "href": "/docs",
            },
            {"tag": "p"},
        )
        v.view("/docs")
        v.click(
            {
                "tag": "a",
                "classes": ["doc-link"],
                "text": "Install the snippet",
                "href": "/docs#install",
            },
            {"tag": "li"},
            {"tag": "ul", "id": "doc-list"},
        )
        v.nav_click("nav-pricing", "Pricing", "/pricing")
    else:
        v.click(
            {
                "tag": "a",
                "id": "hero-pricing",
                "classes": ["btn"],
                "text": "See pricing",
                "href": "/pricing",
            },
            {"tag": "p"},
        )
    v.view("/pricing")
    if rng.random() > role.depth:
        return  # researched, left
    if rng.random() < 0.5 + role.depth / 3:
        v.click(_button("request-demo", "Request a demo", "demo-cta"), *_plan_card("enterprise", 3))
        v.submit("demo-form")
    if rng.random() > role.depth:
        return
    trial = {
        "tag": "a",
        "classes": ["btn", "plan-cta"],
        "text": "Start free trial",
        "href": "/signup?plan=team",
    }
    v.click(trial, *_plan_card("team", 2))
    v.view("/signup")
    v.submit("signup-form")
    v.identify(
        email, {"email": email, "title": role.title, "role": role.role, "company": account.name}
    )
    v.group(account)
    v.view("/app")
    for _ in range(rng.randint(0, 3)):
        if rng.random() < 0.5:
            v.click(
                _button("create-dashboard", "New dashboard", "secondary"),
                {"tag": "div", "classes": ["card"]},
            )
        else:
            v.click(
                _button("invite-teammate", "Invite teammate", "secondary"),
                {"tag": "div", "classes": ["card"]},
            )
    if rng.random() < role.depth - 0.25:
        v.wait(600, 3600)  # trial users come back later to upgrade
        v.view("/app")
        v.click(
            _button("upgrade", "Upgrade to Team", "upgrade-cta"),
            {"tag": "div", "id": "billing", "classes": ["card"]},
        )
        v.track(
            "Plan Upgraded",
            {
                "plan": "team",
                "seats": account.plan_seats,
                "mrr": account.plan_seats * 49,
                "currency": "EUR",
            },
        )


def _b2c(v: Visitor) -> None:
    rng = v.rng
    v.view("/shop")
    cart: list[Product] = []
    for _ in range(rng.randint(1, 3)):
        product = rng.choice(PRODUCTS)
        v.click(
            {
                "tag": "a",
                "classes": ["btn", "product-link"],
                "text": "View",
                "href": f"/shop/{product.slug}",
            },
            {"tag": "div", "classes": ["card", "product"]},
            {"tag": "div", "id": "products", "classes": ["cards"]},
        )
        v.view(f"/shop/{product.slug}")
        if rng.random() < 0.45:
            v.click(
                {
                    "tag": "button",
                    "id": "add-to-cart",
                    "classes": ["btn"],
                    "text": "Add to cart",
                    "attributes": {"data-product": product.slug},
                }
            )
            cart.append(product)
            v.view("/cart")
            if rng.random() < 0.5:
                break  # impulsive: straight to checkout
            v.nav_click("nav-shop", "Shop", "/shop")
        else:
            v.click(
                {
                    "tag": "a",
                    "id": "back-to-shop",
                    "classes": ["btn", "secondary"],
                    "text": "Keep browsing",
                    "href": "/shop",
                }
            )
        v.view("/shop")
    if not cart or rng.random() < 0.3:
        return
    if v.path != "/cart":
        v.nav_click("nav-cart", "Cart", "/cart")
        v.view("/cart")
    v.click(
        {"tag": "a", "id": "checkout", "classes": ["btn"], "text": "Checkout", "href": "/checkout"}
    )
    v.view("/checkout")
    if rng.random() < 0.25:
        return  # abandoned at checkout
    v.submit("checkout-form")
    email = v.anon.removeprefix("anon-") + "@example.com"
    v.identify(email, {"email": email})
    v.track(
        "Order Completed",
        {
            "revenue": sum(p.price for p in cart),
            "currency": "EUR",
            "products": [p.slug for p in cart],
            "items": len(cart),
        },
    )


def _person(rng: random.Random) -> tuple[Account, Role, str]:
    account = rng.choice(ACCOUNTS)
    role = rng.choices(ROLES, weights=[r.weight for r in ROLES])[0]
    # A few people per role per account, so accounts have several roles and repeat visitors.
    email = f"{role.role}{rng.randint(1, 3)}@{account.domain}"
    return account, role, email


def journey(rng: random.Random, now: datetime, site: str = SITE) -> list[dict[str, Any]]:
    """One visit's messages, starting at ``now``: a B2B buyer (45%) or a B2C shopper."""
    if rng.random() < 0.45:
        account, role, email = _person(rng)
        # One device per person (plus a second one now and then), so people come back.
        device = f"anon-{email.replace('@', '-at-')}-{int(rng.random() < 0.2)}"
        visitor = Visitor(rng, now, device, site)
        _b2b(visitor, account, role, email)
    else:
        # A pool of shoppers' browsers: some come back and buy again.
        visitor = Visitor(rng, now, f"anon-shopper{rng.randint(1, 1500):04d}", site)
        _b2c(visitor)
    return visitor.out


def history(
    rng: random.Random, end: datetime, days: int, visits_per_day: int, site: str = SITE
) -> Iterator[dict[str, Any]]:
    """``days`` days of visits ending at ``end``, in time order per visit, with
    ``receivedAt`` set so an import keeps the historic times. Traffic grows over the period
    and dips at weekends, so charts have a shape."""
    start = end - timedelta(days=days)
    for day in range(days):
        midnight = start + timedelta(days=day)
        weekend = midnight.weekday() >= 5
        count = int(visits_per_day * (0.6 + 0.8 * day / max(days, 1)) * (0.5 if weekend else 1))
        for _ in range(count):
            begin = midnight + timedelta(seconds=rng.randint(6 * 3600, 22 * 3600))
            for message in journey(rng, begin, site):
                if message["timestamp"] < format_ts(end):
                    yield {**message, "receivedAt": message["timestamp"]}
