"""The demo: seeded journeys, the site's pages and element chains, the example definitions."""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from collectors.http.normalize import Receipt, normalize
from pipeline.definitions import load_definitions
from pipeline.demo.journeys import SITE, history, journey
from pipeline.demo.personas import ACCOUNTS
from pipeline.demo.site import DEMO_DEFINITIONS, PAGES, PRODUCTS, render
from pipeline.demo.traffic import history_path, live_journey, write_history
from pipeline.timeutil import format_ts, parse_ts

ROOT = Path(__file__).parents[2]
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
KEY = "wk_demo_unit_0001"


def _journeys(n: int, seed: int = 11) -> list[list[dict]]:
    rng = random.Random(seed)
    return [journey(rng, NOW + timedelta(minutes=i)) for i in range(n)]


def test_journeys_are_deterministic_for_a_seed() -> None:
    assert _journeys(30, seed=5) == _journeys(30, seed=5)
    assert _journeys(30, seed=5) != _journeys(30, seed=6)


def test_journeys_are_valid_messages_in_time_order() -> None:
    for messages in _journeys(300):
        times = [parse_ts(m["timestamp"]) for m in messages]
        assert times == sorted(times)
        assert len({m["anonymousId"] for m in messages}) == 1
        for message in messages:
            normalize(message, Receipt.at(NOW))  # raises InvalidEvent when malformed


def test_b2b_visitors_identify_with_company_emails_and_group_with_firmographics() -> None:
    roles: dict[str, set[str]] = defaultdict(set)
    domains = {a.domain for a in ACCOUNTS}
    for messages in _journeys(400):
        kinds = [m["type"] for m in messages]
        if "group" not in kinds:
            continue
        identify = next(m for m in messages if m["type"] == "identify")
        group = next(m for m in messages if m["type"] == "group")
        assert kinds.index("identify") < kinds.index("group")
        assert group["groupId"] in domains
        assert identify["traits"]["email"].endswith("@" + group["groupId"])
        assert group["userId"] == identify["userId"]
        assert {"industry", "employees", "revenue", "country"} <= set(group["traits"])
        roles[group["groupId"]].add(identify["traits"]["role"])
        # The B2B path: pricing before signup before any upgrade.
        paths = [m["context"]["page"]["path"] for m in messages if m.get("event") == "$pageview"]
        assert paths.index("/pricing") < paths.index("/signup") < paths.index("/app")
    assert len(roles) == len(ACCOUNTS)
    assert all(len(r) >= 2 for r in roles.values()), roles  # several roles per account


def test_b2c_orders_carry_the_cart_revenue() -> None:
    prices = {p.slug: p.price for p in PRODUCTS}
    orders = [
        m for messages in _journeys(400) for m in messages if m.get("event") == "Order Completed"
    ]
    assert len(orders) > 10
    for order in orders:
        props = order["properties"]
        assert props["revenue"] == sum(prices[s] for s in props["products"]) > 0
        assert props["currency"] == "EUR"


def test_every_click_target_exists_on_the_page_it_was_clicked_on() -> None:
    """Simulated element chains describe the real site, so definitions match both."""
    checked = Counter()
    for messages in _journeys(200):
        for m in messages:
            if m.get("event") not in ("$click", "$submit"):
                continue
            page = render(m["context"]["page"]["path"], "http://c", KEY)
            assert page is not None
            html = page[1].decode()
            for element in m["elements"]:
                if element.get("id"):
                    assert f'id="{element["id"]}"' in html, (element, m["context"])
                for cls in element.get("classes", []):
                    assert re.search(rf'class="[^"]*\b{re.escape(cls)}\b', html), element
                checked[element["tag"]] += 1
    assert checked["button"] and checked["a"] and checked["form"]


def test_demo_definitions_match_simulated_traffic() -> None:
    definitions = load_definitions(DEMO_DEFINITIONS)
    seen: Counter[str] = Counter()
    for messages in _journeys(400):
        for m in messages:
            seen.update(definitions.defined_events(m))
            seen[m.get("event") or m["type"]] += 1
    unmatched = [d.name for d in definitions.events if not seen[d.name]]
    assert not unmatched
    for funnel in definitions.funnels:
        assert all(seen[step] for step in funnel.spec.steps), funnel.name
    # A $pageview of the shop's list is no product view.
    assert (
        definitions.defined_events(
            {"event": "$pageview", "context": {"page": {"url": SITE + "/shop"}}}
        )
        == []
    )


def test_live_journeys_end_now_and_history_stays_in_its_days(tmp_path: Path) -> None:
    rng = random.Random(3)
    for _ in range(50):
        messages = live_journey(rng, NOW, SITE)
        assert max(parse_ts(m["timestamp"]) for m in messages) == NOW
    path = tmp_path / "history.jsonl"
    count = write_history(path, 7, NOW, seed=1, visits_per_day=20, site=SITE)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert len(lines) == count > 500
    times = [parse_ts(m["timestamp"]) for m in lines]
    assert min(times) >= NOW - timedelta(days=7) and max(times) < NOW
    assert len({t.date() for t in times}) >= 7
    assert all(m["receivedAt"] == m["timestamp"] for m in lines)
    assert path.read_bytes() == _again(tmp_path, count)


def _again(tmp_path: Path, count: int) -> bytes:
    path = tmp_path / "again.jsonl"
    assert write_history(path, 7, NOW, seed=1, visits_per_day=20, site=SITE) == count
    return path.read_bytes()


def test_history_grows_over_the_period() -> None:
    rng = random.Random(2)
    days = Counter(
        parse_ts(m["timestamp"]).date() for m in history(rng, NOW, 28, 40) if m["type"] == "track"
    )
    ordered = [days[d] for d in sorted(days)]
    assert sum(ordered[-7:]) > sum(ordered[:7])


@pytest.mark.parametrize("path", [*PAGES, "/shop/hoodie", "/pricing?plan=team", "/docs/"])
def test_every_page_has_the_snippet_with_collector_and_key(path: str) -> None:
    found = render(path, "http://127.0.0.1:8000", KEY)
    assert found is not None
    content_type, body = found
    html = body.decode()
    assert content_type.startswith("text/html")
    assert '"http://127.0.0.1:8000/autocap.min.js"' in html
    assert f'autocap.init("{KEY}");' in html
    assert '<script src="/site.js" defer></script>' in html
    assert "{{" not in html


def test_site_assets_and_unknown_paths() -> None:
    assert render("/site.css", "http://c", KEY)[0] == "text/css"  # type: ignore[index]
    assert render("/site.js", "http://c", KEY)[0] == "text/javascript"  # type: ignore[index]
    assert render("/shop/no-such-thing", "http://c", KEY) is None
    assert render("/admin", "http://c", KEY) is None
    product = render("/shop/mug", "http://c", KEY)[1].decode()  # type: ignore[index]
    assert "Desk Mug" in product and 'data-price="19"' in product


def test_site_snippet_is_the_documented_loader() -> None:
    """The site installs the same paste-in loader the README documents (no drift)."""
    loader = (ROOT / "collectors" / "js" / "loader.html").read_text()
    script = loader[loader.index("<script>") :]
    expected = script.replace("COLLECTOR", "{{collector}}").replace("WRITE_KEY", "{{write_key}}")
    site = (ROOT / "pipeline" / "demo" / "site" / "_snippet.html").read_text()
    assert site == expected


def test_collector_url_and_key_are_escaped() -> None:
    html = render("/", 'http://x"><script>alert(1)</script>', KEY)[1].decode()  # type: ignore[index]
    assert "<script>alert(1)" not in html


def test_format_ts_roundtrip_is_what_history_compares() -> None:
    # history() compares formatted timestamps as strings: the format must sort as time does.
    a, b = NOW, NOW + timedelta(milliseconds=1)
    assert (format_ts(a) < format_ts(b)) and len(format_ts(a)) == len(format_ts(b))


def test_a_kept_history_file_is_reused(tmp_path: Path) -> None:
    path, kept = history_path(tmp_path, 30, NOW)
    assert not kept and path.name == "history-30d-20261123T1200.jsonl"
    path.write_text("{}\n")
    (tmp_path / "history-7d-20261101T0000.jsonl").write_text("{}\n")
    (tmp_path / "history-30d-20261124T0000.jsonl.tmp").write_text("")  # a crashed write
    assert history_path(tmp_path, 30, NOW + timedelta(days=1)) == (path, True)
    assert history_path(tmp_path, 14, NOW) == (tmp_path / "history-14d-20261123T1200.jsonl", False)


def test_demo_cohorts_read_defined_events() -> None:
    definitions = load_definitions(DEMO_DEFINITIONS)
    defined = {d.name for d in definitions.events}
    assert {c.of for c in definitions.cohorts} == {"person", "account"}
    for cohort in definitions.cohorts:
        for leaf in cohort.where.leaves():
            assert set(leaf.events) <= defined, (cohort.name, leaf.events)
