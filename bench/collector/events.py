"""Realistic autocapture traffic: batches of Segment-spec messages, as autocap.js sends them.

Pure and seeded (the clock is passed in): one seed always gives the same messages, including
their ``messageId`` values, so each run of the benchmark uses its own seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson

from pipeline.timeutil import format_ts

__all__ = ["make_batches", "make_message"]

_SITE = "https://shop.example.com"
_PAGES = [
    ("/", "Acme Shop - Running shoes and outdoor gear"),
    ("/pricing", "Pricing - Acme Pro for teams"),
    ("/shop/sneakers", "Sneakers - Acme Shop"),
    ("/shop/sneakers/trail-runner-3", "Trail Runner 3 - Acme Shop"),
    ("/shop/cart", "Your cart - Acme Shop"),
    ("/checkout", "Checkout - Acme Shop"),
    ("/docs/getting-started", "Getting started - Acme Docs"),
    ("/signup", "Create your account - Acme"),
]
_REFERRERS = ["https://www.google.com/", "https://news.ycombinator.com/", "", _SITE + "/"]
_USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
]
_SCREENS = [(1440, 900), (1920, 1080), (390, 844), (2560, 1440)]
_LOCALES = ["en-US", "en-GB", "de-DE", "fr-FR"]
_BUTTONS = [
    ("buy", "Buy now", {"data-plan": "pro"}),
    ("add-to-cart", "Add to cart", {"data-sku": "TR3-42-BLU"}),
    ("checkout", "Proceed to checkout", {"data-step": "1"}),
    ("signup", "Start free trial", {"data-plan": "team"}),
]
_FIELDS = [("email", "email"), ("company", "text"), ("size", "select"), ("quantity", "number")]
_EVENT_WEIGHTS = {"$pageview": 3, "$click": 5, "$change": 2, "$submit": 1}


def _element(tag: str, rng: random.Random, **fields: Any) -> dict[str, Any]:
    return {
        "tag": tag,
        "classes": fields.pop("classes", []),
        "nth_child": rng.randint(1, 6),
        "nth_of_type": rng.randint(1, 3),
        **fields,
    }


def _ancestors(rng: random.Random) -> list[dict[str, Any]]:
    """The element chain above the target, up to ``body`` (autocap.js sends all of it)."""
    return [
        _element("div", rng, classes=["card-body", "flex", "gap-2"]),
        _element("section", rng, id="product", classes=["container", "mx-auto"]),
        _element("main", rng, classes=["page"]),
        _element("body", rng),
    ]


def _target(event: str, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """The element an interaction hit, and the event's own properties."""
    if event == "$click":
        ident, text, attributes = rng.choice(_BUTTONS)
        node = _element(
            "button", rng, id=ident, classes=["btn", "primary"], text=text, attributes=attributes
        )
        return node, {"$event_type": "click", "$el_text": text}
    if event == "$change":
        name, kind = rng.choice(_FIELDS)
        node = _element("input", rng, name=name, type=kind, classes=["form-control"])
        return node, {"$event_type": "change", "$field_name": name}
    node = _element("form", rng, id="checkout-form", attributes={"action": "/checkout"})
    return node, {"$event_type": "submit", "$form_fields": 4}


def make_message(rng: random.Random, anonymous_id: str, at: datetime) -> dict[str, Any]:
    """One autocaptured message (600-1200 bytes of JSON) from ``anonymous_id`` at ``at``."""
    event = rng.choices(list(_EVENT_WEIGHTS), weights=list(_EVENT_WEIGHTS.values()))[0]
    path, title = rng.choice(_PAGES)
    width, height = rng.choice(_SCREENS)
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "anonymousId": anonymous_id,
        "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "timestamp": format_ts(at),
        "context": {
            "page": {
                "url": _SITE + path,
                "path": path,
                "title": title,
                "referrer": rng.choice(_REFERRERS),
            },
            "userAgent": rng.choice(_USER_AGENTS),
            "locale": rng.choice(_LOCALES),
            "screen": {"width": width, "height": height},
            "library": {"name": "autocap.js", "version": "0.1.0"},
        },
        "properties": {"$viewport_width": width, "$viewport_height": height},
    }
    if event == "$pageview":
        message["properties"].update({"$current_url": _SITE + path, "$pathname": path})
    else:
        target, properties = _target(event, rng)
        message["properties"].update(properties)
        message["elements"] = [target, *_ancestors(rng)]
    return message


def _batch(rng: random.Random, size: int, now: datetime, visitors: int) -> bytes:
    """``size`` messages from one visitor (a browser flushes its own queue), oldest first."""
    anonymous_id = f"anon-{rng.randrange(visitors):06d}-{rng.getrandbits(32):08x}"
    start = now - timedelta(seconds=size)
    messages = [make_message(rng, anonymous_id, start + timedelta(seconds=i)) for i in range(size)]
    return orjson.dumps({"batch": messages, "sentAt": format_ts(now)})


def make_batches(
    count: int, *, size: int = 20, seed: int = 0, now: datetime, visitors: int = 2000
) -> Iterator[bytes]:
    """``count`` ``POST /v1/batch`` bodies of ``size`` messages; one seed, one traffic."""
    rng = random.Random(seed)
    for _ in range(count):
        yield _batch(rng, size, now, visitors)
